"""Drive a headless Chromium through its DevTools protocol over a pipe (no driver, no websocket).

``chromium --remote-debugging-pipe`` reads protocol commands on fd 3 and writes replies and
events on fd 4, each a JSON object ended by a NUL byte. That is all a test needs to open a page,
type, click, read the DOM and take a screenshot, with nothing to download (selenium and
playwright need driver binaries of their own). Commands: https://chromedevtools.github.io/.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

BASH = shutil.which("bash") or "/bin/bash"  # dash's redirections take single-digit fds only


def find_chromium() -> str | None:
    """Debian's ``chromium`` (or another Chromium/Chrome) on PATH, else None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


class Chromium:
    """One headless browser with one page; every wait has a timeout.

    Args:
      binary: the browser executable.
      profile: an empty folder for its profile.
      size: the window's (width, height) in CSS pixels.
    """

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (900, 760)):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # The child's ends, moved to fds >= 10 so that the shell's "3<&R 4>&W" cannot overwrite
        # one with the other; bash puts them at 3 and 4 and execs the browser. (No
        # preexec_fn: that would make subprocess fork a multithreaded process, JAX's included.)
        child_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(res_w)
        flags = [
            "--headless",
            "--no-sandbox",  # we run as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-proxy-server",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [BASH, "-c", f'exec "$0" "$@" 3<&{child_r} 4>&{child_w}', binary, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(child_r, child_w),
            start_new_session=True,  # its own process group: close() can end all of it
        )
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)

    # -- protocol -------------------------------------------------------------------------------

    def send(
        self, method: str, params: dict | None = None, session: bool = False, timeout: float = 30
    ) -> dict[str, Any]:
        """One command; returns its result (raises on a protocol error)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._res_r], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError(f"no word from the browser within {timeout} s")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the browser exited (status {self.proc.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(max(deadline - time.monotonic(), 0.01)))

    # -- what a user does -----------------------------------------------------------------------

    def open(self, url: str, timeout: float = 30) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired", timeout)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus an element and type ``text`` into it (as an input method would)."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text}, session=True)

    def click(self, selector: str) -> None:
        """A left click, pressed and released, in the middle of the element."""
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
                session=True,
            )

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {timeout} s")
            time.sleep(0.05)
        return value

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this object started
            self.proc.wait(10)
        os.close(self._cmd_w)
        os.close(self._res_r)
