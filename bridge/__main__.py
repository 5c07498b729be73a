from bridge.cli import main

# Guarded: `serve --workers` starts processes that import this module again.
if __name__ == "__main__":
    main()
