"""The public PKI files of credential policies: each policy's CRL, served without authentication."""
