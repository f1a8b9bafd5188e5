"""provisiond: a self-hosted device onboarding service that speaks the DPS, zero-touch and Sphere wire APIs."""

__version__ = "0.1.0"
