"""trust-ladder: places every CRM contact on a trust ladder and writes it back onto the Contact."""

__version__ = "0.1.0"
