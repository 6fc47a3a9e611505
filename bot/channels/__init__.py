"""Channel adapters: each translates one wire format to the router's interface and back."""
