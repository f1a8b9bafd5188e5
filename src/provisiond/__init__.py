"""provisiond: self-hosted device onboarding that speaks the DPS, zero-touch and Sphere wire APIs."""

__version__ = "0.1.0"
