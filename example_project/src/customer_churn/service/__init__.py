"""The HTTP service: answers predictions from a serving export."""
