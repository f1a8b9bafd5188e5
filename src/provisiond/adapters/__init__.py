"""Outbound adapters: what the services call out to, each behind a port its service defines.

No dialect owns them and they import none (``api/`` is for what calls in); the composition root
builds them and hands them to the services.
"""
