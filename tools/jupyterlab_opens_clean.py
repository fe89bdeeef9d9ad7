"""Open a notebook in JupyterLab, in headless Chromium, and say whether JupyterLab marks it modified once its
kernel is connected (JupyterLab rewrites metadata that differ from its kernel's: kernelspec, language_info).

    python tools/jupyterlab_opens_clean.py [main.ipynb]    # needs jupyterlab (the notebook extra) and chromium

Exit status 0 when the notebook's tab is not marked modified, 1 when it is. A manual check (Chromium is no
dependency of the package); its result for main.ipynb is in docs/figures.md, "main.ipynb".
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client, which JupyterLab's server installs

# The notebook's tab and whether JupyterLab shows it as modified.
PROBE = ("JSON.stringify([...document.querySelectorAll('.lm-DockPanel .lm-TabBar-tab')]"
         ".map(t => [t.textContent, t.classList.contains('jp-mod-dirty')]))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    return json.load(urllib.request.urlopen(url, timeout=5))


def wait_for(what, seconds: float):
    end = time.time() + seconds
    while time.time() < end:
        try:
            found = what()
            if found:
                return found
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("timed out waiting for JupyterLab or Chromium")


def main() -> int:
    notebook = Path(sys.argv[1] if len(sys.argv) > 1 else "main.ipynb").resolve()
    folder = Path(tempfile.mkdtemp())
    shutil.copy(notebook, folder / notebook.name)
    lab_port, debug_port = free_port(), free_port()
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={lab_port}", "--allow-root",
                            "--IdentityProvider.token=", f"--ServerApp.root_dir={folder}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                                f"--remote-debugging-port={debug_port}", f"--user-data-dir={folder / 'browser'}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{lab_port}/api/status"), 60)
        page = wait_for(lambda: [p for p in get(f"http://127.0.0.1:{debug_port}/json") if p["type"] == "page"], 30)[0]
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        calls = iter(range(1, 10**6))

        def call(method, **params):
            number = next(calls)
            ws.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("id") == number:
                    return reply

        call("Page.navigate", url=f"http://127.0.0.1:{lab_port}/lab/tree/{notebook.name}")
        wait_for(lambda: [s for s in get(f"http://127.0.0.1:{lab_port}/api/sessions")
                          if s["kernel"]["execution_state"] == "idle"], 120)
        time.sleep(10)  # the kernel's info reaches the page, which then updates the metadata
        tabs = json.loads(call("Runtime.evaluate", expression=PROBE, returnByValue=True)["result"]["result"]["value"])
        dirty = dict(tabs).get(notebook.name)
        if dirty is None:
            raise SystemExit(f"JupyterLab shows no tab {notebook.name} (tabs: {tabs})")
        print(f"{notebook.name}: {'marked modified on opening' if dirty else 'not modified after opening'} "
              f"(JupyterLab, kernel connected)")
        return 1 if dirty else 0
    finally:
        browser.kill()
        lab.terminate()
        lab.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
