"""The embedded sandbox gateway: a real loopback HTTP server that behaves like Cactus."""

from cactus_desk.sandbox.faults import Fault
from cactus_desk.sandbox.server import SandboxGateway

__all__ = ["Fault", "SandboxGateway"]
