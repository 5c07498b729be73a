"""The HTTP edge: the webhook, socket admission, pages, headers, limits and errors."""
