"""The reseller object model of the Common Android Reseller Library, as JSON over HTTP."""
