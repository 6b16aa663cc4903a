"""The callback receiver: an ASGI app for the gateway's callbacks, served by uvicorn."""

from cactus_desk.receiver.app import CallbackApp
from cactus_desk.receiver.serve import BackgroundReceiver, ReceiverError

__all__ = ["BackgroundReceiver", "CallbackApp", "ReceiverError"]
