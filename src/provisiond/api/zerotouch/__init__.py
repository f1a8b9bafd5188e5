"""Android zero-touch reseller API v1 (androiddeviceprovisioning), on the claims core."""
