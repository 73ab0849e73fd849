"""Secret and ConfigMap volumes for processes the lab runs in place of containers.

Lab processes share the host's filesystem, so a volume cannot be mounted at its container path.
Instead each volume is written to a per-pod directory and container paths are rewritten to it:
in the command line and inside files the command line names (``--config``), which is where
OpenVPN reads its other paths from.
"""

import base64
import os


def materialize(api, pod, base_dir):
    """Write the pod's secret/configMap volumes; return {mountPath: local directory}."""
    ns = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    mounts = {}
    for container in pod["spec"].get("containers") or []:
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                continue
            local = os.path.join(base_dir, "vol", vm["name"])
            os.makedirs(local, mode=0o700, exist_ok=True)
            files = _files(api, ns, vol)
            if files is None:
                raise RuntimeError("volume %s of pod %s/%s: source not found" % (
                    vm["name"], ns, pod["metadata"]["name"]))
            for path, content in files.items():
                target = os.path.join(local, path)
                os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(content)
            mounts[vm["mountPath"].rstrip("/")] = local
    return mounts


def _files(api, ns, vol):
    if "secret" in vol:
        obj = api.try_get(api.rt("", "v1", "secrets"), ns, vol["secret"]["secretName"])
        if obj is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        items = vol["secret"].get("items")
    elif "configMap" in vol:
        obj = api.try_get(api.rt("", "v1", "configmaps"), ns, vol["configMap"]["name"])
        if obj is None:
            return None
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        items = vol["configMap"].get("items")
    else:
        return {}
    if items:
        return {i.get("path", i["key"]): data[i["key"]] for i in items if i["key"] in data}
    return data


def rewrite(text, mounts):
    for mount in sorted(mounts, key=len, reverse=True):
        text = text.replace(mount + "/", mounts[mount] + "/")
        if text == mount:
            text = mounts[mount]
    return text


def command_line(container, mounts, scratch):
    """The container's command line with volume paths rewritten; --config files copied with
    their contents rewritten too."""
    argv = [rewrite(a, mounts) for a in (container.get("command") or []) +
            (container.get("args") or [])]
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        out.append(arg)
        if arg == "--config" and i + 1 < len(argv):
            src = argv[i + 1]
            with open(src, encoding="utf-8") as fh:
                content = rewrite(fh.read(), mounts)
            dst = os.path.join(scratch, "config")
            with open(dst, "w", encoding="utf-8") as fh:
                fh.write(content)
            out.append(dst)
            i += 1
        i += 1
    return out
