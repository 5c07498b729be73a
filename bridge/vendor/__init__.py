"""The vendor side: AIRudder's callback and upstream models, and request signing."""
