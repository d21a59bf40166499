"""Test-only sandbox probe (Python, componentize-py): for each event it tries what a
plugin must not be able to do, and reports what happened in fields instead of failing:

- `file`: reads the file named by config `path` (default `/etc/hostname`):
  `denied: <error>` or `read N bytes: <start of the content>`;
- `dir`: lists `/`: `denied: <error>` or the names;
- `socket`: opens a TCP connection to 127.0.0.1:<config `port`> (default 80):
  `denied: <error>` or `connected`;
- `env`: the environment: `empty` or `N variables: NAMES`; `env_count` (int) and `home`
  (the value of HOME, null when unset) beside it.

`os.environ` is filled when the interpreter starts; for componentize-py that is at build
time, before the snapshot, so the probe also shows whether anything of the build
machine's environment was captured into the component.
"""

import encodings.idna  # noqa: F401  # kept in the snapshot: socket addresses go through it
import os
import socket

from weir_sdk import Config, Enricher, Event, export_enricher


def _error(exc: BaseException) -> str:
    return f"denied: {type(exc).__name__}: {exc}"


class Probe(Enricher):
    def __init__(self, path: str, port: int):
        self.path = path
        self.port = port

    @classmethod
    def configure(cls, config: Config) -> "Probe":
        config.reject_unknown(("path", "port"))
        return cls(config.get("path", "/etc/hostname"), config.get_int("port", 80))

    def enrich(self, event: Event) -> Event:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            event["file"] = f"read {len(data)} bytes: {data[:80].decode(errors='replace')}"
        except BaseException as exc:  # noqa: BLE001 - every outcome is the answer
            event["file"] = _error(exc)
        try:
            event["dir"] = ",".join(sorted(os.listdir("/"))[:40])
        except BaseException as exc:  # noqa: BLE001
            event["dir"] = _error(exc)
        event["socket"] = self.connect()
        names = sorted(os.environ)
        event["env"] = f"{len(names)} variables: {','.join(names)}" if names else "empty"
        event["env_count"] = len(names)
        event["home"] = os.environ.get("HOME")
        return event

    def connect(self) -> str:
        """A TCP connection to 127.0.0.1:port, step by step, so the answer says which step
        the sandbox refused."""
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001
            return f"{_error(exc)} (creating the socket)"
        try:
            sock.settimeout(2)
            sock.connect(("127.0.0.1", self.port))
            return "connected"
        except BaseException as exc:  # noqa: BLE001
            return f"{_error(exc)} (connecting)"
        finally:
            sock.close()


Enrich = export_enricher(Probe)
