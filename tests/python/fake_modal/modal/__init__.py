"""A stand-in for the Modal SDK, for testing modal_sandbox.py without Modal.

Only what modal_sandbox.py uses, with the same call shapes. State lives under
$FAKE_MODAL_ROOT so that separate processes (one per script invocation) see
the same images and sandboxes:

* `calls.jsonl`: one JSON object per SDK call, for the tests to inspect;
* `images.json`: the IDs of built images;
* `sb-N/`: a sandbox's filesystem; remote absolute paths map below it, and
  `exec` runs the command locally with the sandbox's workdir as cwd.

With FAKE_MODAL_HOST_FS=1 a sandbox's paths are this machine's paths instead,
and creating a sandbox copies the image's `add_local_dir` files to their remote
paths, so that Offload's own `cd ROOT` works (tests/providers.rs runs the whole
`type = "modal"` provider this way).
"""

import hashlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from . import exception

__all__ = ["App", "Image", "Sandbox", "exception"]

_lock = threading.Lock()


def _root() -> Path:
    return Path(os.environ["FAKE_MODAL_ROOT"])


def _record(op: str, **fields) -> None:
    with _lock, open(_root() / "calls.jsonl", "a") as f:
        f.write(json.dumps({"op": op, **fields}) + "\n")


def _images() -> dict:
    path = _root() / "images.json"
    return json.loads(path.read_text()) if path.exists() else {}


class App:
    def __init__(self, name):
        self.name = name

    @staticmethod
    def lookup(name, create_if_missing=False):
        _record("App.lookup", name=name, create_if_missing=create_if_missing)
        return App(name)


class Image:
    def __init__(self, ops, object_id=None):
        self._ops = ops
        self.object_id = object_id

    @staticmethod
    def debian_slim(python_version=None):
        return Image([["debian_slim", python_version]])

    @staticmethod
    def from_dockerfile(path, context_dir=None):
        return Image([["from_dockerfile", Path(path).read_text(), str(context_dir)]])

    @staticmethod
    def from_id(image_id):
        _record("Image.from_id", image_id=image_id)
        if image_id not in _images() or os.environ.get("FAKE_MODAL_LOST_IMAGES"):
            raise exception.NotFoundError(f"Image {image_id} not found")
        return Image([["from_id", image_id]], object_id=image_id)

    def pip_install(self, *packages):
        return Image(self._ops + [["pip_install", list(packages)]])

    def workdir(self, path):
        return Image(self._ops + [["workdir", path]])

    def run_commands(self, *commands):
        return Image(self._ops + [["run_commands", list(commands)]])

    def add_local_dir(self, local_path, remote_path, copy=False, ignore=()):
        files = []
        for root, dirs, names in os.walk(local_path):
            rel_root = Path(root).relative_to(local_path)
            dirs[:] = sorted(d for d in dirs if not ignore(rel_root / d))
            files += [(rel_root / n).as_posix() for n in sorted(names) if not ignore(rel_root / n)]
        _record("Image.add_local_dir", local=str(local_path), remote=remote_path, copy=copy, files=files)
        return Image(self._ops + [["add_local_dir", str(local_path), remote_path, files]])

    def build(self, app):
        digest = hashlib.sha256(json.dumps(self._ops).encode()).hexdigest()[:12]
        image_id = f"im-{digest}"
        _record("Image.build", image_id=image_id, ops=self._ops)
        if os.environ.get("FAKE_MODAL_BUILD_FAILS"):
            raise exception.Error("build failed: out of quota")
        with _lock:
            images = _images()
            images[image_id] = self._ops
            (_root() / "images.json").write_text(json.dumps(images))
        return Image(self._ops, object_id=image_id)


class _Stream:
    def __init__(self, pipe):
        self._pipe = pipe

    def __iter__(self):
        for line in self._pipe:
            yield line


class _Process:
    def __init__(self, popen):
        self._popen = popen
        self.stdout = _Stream(popen.stdout)
        self.stderr = _Stream(popen.stderr)
        self.returncode = None

    def wait(self):
        self.returncode = self._popen.wait()
        return self.returncode


class Sandbox:
    def __init__(self, object_id):
        self.object_id = object_id
        self._dir = _root() / object_id

    def _path(self, remote):
        if os.environ.get("FAKE_MODAL_HOST_FS"):
            return Path(remote)
        return self._dir / str(remote).lstrip("/")

    @staticmethod
    def create(*args, app=None, image=None, workdir=None, timeout=None):
        if image is None or image.object_id is None:
            raise exception.Error("image not built")
        with _lock:
            n = len([p for p in _root().iterdir() if p.name.startswith("sb-")])
            sandbox = Sandbox(f"sb-{n}")
            sandbox._dir.mkdir()
        (sandbox._dir / "meta.json").write_text(json.dumps({"workdir": workdir, "image": image.object_id}))
        if workdir:
            sandbox._path(workdir).mkdir(parents=True, exist_ok=True)
        for op in _images().get(image.object_id, []) + image._ops:
            if op[0] == "add_local_dir":
                _, local, remote, files = op
                for rel in files:
                    target = sandbox._path(remote) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(Path(local) / rel, target)
        _record("Sandbox.create", sandbox_id=sandbox.object_id, app=app.name, image=image.object_id,
                workdir=workdir, timeout=timeout, args=list(args))
        return sandbox

    @staticmethod
    def from_id(sandbox_id):
        sandbox = Sandbox(sandbox_id)
        if not sandbox._dir.is_dir():
            raise exception.NotFoundError(f"Sandbox {sandbox_id} not found")
        return sandbox

    def exec(self, *argv):
        _record("Sandbox.exec", sandbox_id=self.object_id, argv=list(argv))
        meta = json.loads((self._dir / "meta.json").read_text())
        cwd = self._path(meta["workdir"]) if meta.get("workdir") else self._dir
        popen = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return _Process(popen)

    def open(self, path, mode="r"):
        _record("Sandbox.open", sandbox_id=self.object_id, path=path, mode=mode)
        return open(self._path(path), mode)

    def wait(self):
        return 0

    def terminate(self):
        _record("Sandbox.terminate", sandbox_id=self.object_id)
        shutil.rmtree(self._dir)
