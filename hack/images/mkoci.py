#!/usr/bin/env python3
"""A small OCI image writer (stdlib only) for building images without a container engine.

Subcommands:

  layer SRC OUT.tar [--prefix opt/qd/venv] [--overlay]
      Tar the directory SRC deterministically (sorted names, owner 0:0, a fixed mtime) under
      PREFIX. With --overlay, SRC is an overlayfs upper directory: its whiteouts (0:0 character
      devices) and opaque directories become OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`).
  digest FILE
      Print the sha256 of FILE, cached in FILE.sha256 (keyed by size and mtime).
  image --layer A.tar [--layer B.tar ...] --config JSON [--ref NAME:TAG] [--out FILE|-]
      Write an OCI image layout as a tar (layers uncompressed, so diff_id == digest) whose
      index.json names the image with `io.containerd.image.name` (what `ctr images import`
      reads). Without --out, only print the manifest digest and the total layer size; the
      digest does not depend on the reference, so it can name the tag.

Layers stay uncompressed: the images are only imported into a local containerd, never pushed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import stat
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

#: mtime of every entry in the layers we tar ourselves (2020-01-01T00:00:00Z).
FIXED_MTIME = 1577836800
CHUNK = 1 << 20
LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA = "application/vnd.oci.image.index.v1+json"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def oci_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# --- layers ---------------------------------------------------------------------------------

def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _normalise(ti: tarfile.TarInfo, arcname: str) -> tarfile.TarInfo:
    ti.name = arcname
    ti.mtime = FIXED_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.pax_headers = {}
    return ti


def _empty_file(arcname: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mode = 0o644
    return _normalise(ti, arcname)


def _walk(root: str) -> Iterator[tuple[str, str]]:
    """Yield (full path, path relative to root) in a stable order, parents first."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            yield full, os.path.relpath(full, root)


def write_layer(src: str, out: str, prefix: str = "", overlay: bool = False) -> str:
    """Tar SRC into OUT (via a temporary file) and return its sha256 digest."""
    prefix = prefix.strip("/")
    tmp = out + ".tmp"
    with open(tmp, "wb") as raw:
        hashing = _HashingWriter(raw)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            parts = prefix.split("/") if prefix else []
            for i in range(len(parts)):
                arc = "/".join(parts[: i + 1])
                if i == len(parts) - 1:  # the prefix directory itself takes SRC's mode
                    ti = _normalise(tf.gettarinfo(src, arcname=arc), arc)
                else:
                    ti = tarfile.TarInfo(arc)
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(_normalise(ti, arc))
            for full, rel in _walk(src):
                arc = f"{prefix}/{rel}" if prefix else rel
                st = os.lstat(full)
                if overlay and _is_whiteout(st):
                    head, name = os.path.split(arc)
                    tf.addfile(_empty_file(os.path.join(head, ".wh." + name)))
                    continue
                if stat.S_ISSOCK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                    continue
                ti = _normalise(tf.gettarinfo(full, arcname=arc), arc)
                if ti.isreg():
                    with open(full, "rb") as fh:
                        tf.addfile(ti, fh)
                else:
                    tf.addfile(ti)
                if overlay and ti.isdir() and _is_opaque(full):
                    tf.addfile(_empty_file(f"{arc}/.wh..wh..opq"))
    digest = "sha256:" + hashing.sha.hexdigest()
    os.replace(tmp, out)
    _store_digest(out, digest)
    return digest


class _HashingWriter(io.RawIOBase):
    """A write-only file object that hashes what passes through."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.raw.write(view)
        return len(view)


def _stamp(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _store_digest(path: str, digest: str) -> None:
    Path(path + ".sha256").write_text(f"{digest} {_stamp(path)}\n")


def file_digest(path: str) -> str:
    """The sha256 of PATH, from its sidecar when size and mtime still match."""
    side = Path(path + ".sha256")
    if side.exists():
        parts = side.read_text().split()
        if len(parts) == 2 and parts[1] == _stamp(path):
            return parts[0]
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    digest = "sha256:" + sha.hexdigest()
    _store_digest(path, digest)
    return digest


# --- image ----------------------------------------------------------------------------------

def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def plan_image(layers: list[str], config: dict[str, Any]) -> tuple[list[dict[str, Any]], bytes, bytes]:
    """Return (layer descriptors, config JSON, manifest JSON) for the given layer tars."""
    descs = [{"mediaType": LAYER_MEDIA, "digest": file_digest(p), "size": os.path.getsize(p)} for p in layers]
    image_config = {
        "architecture": oci_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
        "history": [{"created_by": f"hack/images/mkoci.py layer {Path(p).name}"} for p in layers],
    }
    config_json = _json(image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA,
        "config": _descriptor(CONFIG_MEDIA, config_json),
        "layers": descs,
    }
    return descs, config_json, _json(manifest)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = _normalise(tarfile.TarInfo(name), name)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))


def write_image(out: BinaryIO, ref: str, layers: list[str], config: dict[str, Any]) -> str:
    """Stream an OCI layout tar to OUT and return the manifest digest."""
    descs, config_json, manifest_json = plan_image(layers, config)
    manifest_desc = _descriptor(MANIFEST_MEDIA, manifest_json)
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    manifest_desc["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag}
    manifest_desc["platform"] = {"architecture": oci_arch(), "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA, "manifests": [manifest_desc]}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        for name in ("blobs", "blobs/sha256"):
            ti = _normalise(tarfile.TarInfo(name), name)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        seen: set[str] = set()
        for path, desc in zip(layers, descs, strict=True):
            if desc["digest"] in seen:
                continue
            seen.add(desc["digest"])
            name = "blobs/sha256/" + desc["digest"].split(":", 1)[1]
            ti = _normalise(tarfile.TarInfo(name), name)
            ti.size, ti.mode = desc["size"], 0o644
            with open(path, "rb") as fh:
                tf.addfile(ti, fh)
        for data in (config_json, manifest_json):
            _add_bytes(tf, "blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)
        _add_bytes(tf, "index.json", _json(index))
    return str(manifest_desc["digest"])


# --- command line ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mkoci.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_layer = sub.add_parser("layer", help="tar a directory into a layer")
    p_layer.add_argument("src")
    p_layer.add_argument("out")
    p_layer.add_argument("--prefix", default="")
    p_layer.add_argument("--overlay", action="store_true", help="SRC is an overlayfs upper dir")
    p_digest = sub.add_parser("digest", help="sha256 of a file (cached)")
    p_digest.add_argument("path")
    p_image = sub.add_parser("image", help="write an OCI layout tar")
    p_image.add_argument("--layer", action="append", required=True, dest="layers")
    p_image.add_argument("--config", required=True, help="the image config's `config` object as JSON")
    p_image.add_argument("--ref", help="full reference, e.g. localhost/qd-extractor:0.1.0-abc")
    p_image.add_argument("--out", help="output file, or - for stdout")
    args = parser.parse_args(argv)

    if args.cmd == "layer":
        print(write_layer(args.src, args.out, args.prefix, args.overlay))
    elif args.cmd == "digest":
        print(file_digest(args.path))
    else:
        config = json.loads(args.config)
        if not args.out:
            descs, _, manifest_json = plan_image(args.layers, config)
            size = sum(d["size"] for d in descs)
            print(_descriptor(MANIFEST_MEDIA, manifest_json)["digest"], size)
            return 0
        if not args.ref:
            parser.error("--out needs --ref")
        if args.out == "-":
            digest = write_image(sys.stdout.buffer, args.ref, args.layers, config)
        else:
            with open(args.out + ".tmp", "wb") as fh:
                digest = write_image(fh, args.ref, args.layers, config)
            os.replace(args.out + ".tmp", args.out)
        print(digest, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
