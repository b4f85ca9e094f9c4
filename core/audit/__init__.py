"""The audit log every app writes to: who (a typed actor), when, what, why. See README
"Audit log"."""
