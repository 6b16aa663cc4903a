"""The two processes of the callback load: the real receiver, and a gateway posting to it.

``python -m benchmarks.callback_load receiver DATA_DIR`` adds the profile ``PROFILE`` (the
generated history's main shop) to ``DATA_DIR``, keeps its salt in an in-memory keyring (this
process's own, never the machine's) and runs the real ``cactus-desk receiver`` command on a
free loopback port; it prints the command's line naming the URL.

``python -m benchmarks.callback_load send URL IDS_FILE RATE SECONDS`` posts signed status
callbacks over HTTP at ``RATE`` a second for ``SECONDS``, for the (request_id, invoice_id)
pairs of ``IDS_FILE`` (JSON) in turn, the way the gateway does, and prints ``SENT n ok m``.
It first gets ready (its imports, its HTTP clients), prints ``READY`` and waits for a line on
stdin: a gateway is running before the load it sends starts, so its own start-up is not part
of the load the window is measured under.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# Not a secret: a salt made up for the benchmark's own in-memory keyring.
SALT = "bench-callback-salt-7d1e"
PROFILE = "Bench main shop"
MERCHANT, SITE = "m_cactus_main", 101


def run_receiver(data_dir: str) -> int:
    """Run ``cactus-desk receiver`` for ``PROFILE`` on ``data_dir`` until SIGTERM."""
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.passwords: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.passwords.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.passwords[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.passwords.pop((service, username), None)

    keyring.set_keyring(MemoryKeyring())
    from cactus_desk import cli
    from cactus_desk.profiles import Profile, ProfileStore
    from cactus_desk.secrets import SecretStore

    profile = ProfileStore(Path(data_dir)).add(
        Profile(
            name=PROFILE, base_url="https://gateway.example.com", merchant_id=MERCHANT, site_id=SITE
        )
    )
    SecretStore().set_salt(profile.id, SALT)
    return cli.main(
        ["--data-dir", data_dir, "receiver", "--listen", "127.0.0.1:0", "--profile", PROFILE]
    )


def callback_body(request_id: str, invoice_id: str, status: int, amount: int) -> dict:
    """A signed status callback as the gateway sends it."""
    from cactus_desk.gateway.signature import sign

    body: dict = {
        "site_id": SITE,
        "status": status,
        "invoice_id": invoice_id,
        "request_id": request_id,
        "amount": amount,
        "is_payout": True,
    }
    body["signature"] = sign(body, SALT)
    return body


def send(url: str, ids_file: str, rate: float, seconds: float, connections: int = 4) -> int:
    """Post callbacks at ``rate`` a second for ``seconds``; print how many and how many ok.

    ``connections`` clients share the rate (as a gateway's workers do), so one slow answer
    does not hold back the rest.
    """
    import threading

    import httpx

    pairs = json.loads(Path(ids_file).read_text())
    counts = {"sent": 0, "ok": 0}
    lock = threading.Lock()
    ready = threading.Barrier(connections + 1)
    go = threading.Event()
    started = 0.0

    def worker(offset: int) -> None:
        interval = connections / rate
        index = offset
        with httpx.Client(timeout=10) as client:
            ready.wait()
            go.wait()
            due = started + offset / rate
            while time.monotonic() - started < seconds:
                time.sleep(max(0.0, due - time.monotonic()))
                request_id, invoice_id, amount = pairs[index % len(pairs)]
                status = (3, 4, 5)[(index // len(pairs)) % 3]
                body = callback_body(request_id, invoice_id, status, amount)
                try:
                    ok = client.post(url, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    counts["sent"] += 1
                    counts["ok"] += ok
                index += connections
                due += interval

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    ready.wait()
    print("READY", flush=True)
    sys.stdin.readline()
    started = time.monotonic()
    go.set()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    print(
        f"SENT {counts['sent']} ok {counts['ok']} in {took:.1f} s "
        f"({counts['sent'] / took:.0f} a second)",
        flush=True,
    )
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "receiver":
        return run_receiver(argv[1])
    return send(argv[1], argv[2], float(argv[3]), float(argv[4]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
