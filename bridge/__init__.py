"""airudder-bridge: AIRudder chatbot callbacks to a web chat widget over WebSockets."""

__version__ = "0.2.0"
