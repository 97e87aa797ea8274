#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every target into fuzz/corpus/<target>/
(named by SHA-1, as libFuzzer names its corpus files). Run once before the
first fuzzing run; the fuzzer and `cargo fuzz cmin` take it from there."""
import gzip, hashlib, io, json, os, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
ROOT = os.path.dirname(FUZZ)

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

# create
fixture = os.path.join(ROOT, "..", "..", "shared", "reference", "docker-api-fixtures", "req-containers-create.json")
for p in [fixture, "/work/shared/reference/docker-api-fixtures/req-containers-create.json"]:
    if os.path.exists(p):
        put("create", open(p, "rb").read())
        break
small_profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                              {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                              {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
for body in [
    {"Image": "bb"},
    {"Image": "bb", "Cmd": "date", "Entrypoint": "/bin/sh"},
    {"Image": "bb", "Cmd": [], "Entrypoint": ["sh"], "Env": ["A=1"], "WorkingDir": "/app", "User": "0:0", "Tty": True,
     "OpenStdin": True, "StdinOnce": True, "AttachStdin": True, "Labels": {"k": "v"}, "StopSignal": "SIGUSR1",
     "StopTimeout": 3, "Hostname": "h1",
     "HostConfig": {"Runtime": "crun", "Memory": 10485760, "CpuShares": 512, "CpuQuota": 50000, "CpuPeriod": 100000,
                    "NanoCpus": 7, "PidsLimit": 100, "NetworkMode": "host",
                    "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "Privileged": True,
                    "CapAdd": ["NET_ADMIN"], "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"], "ReadonlyRootfs": True,
                    "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/f", "CgroupPermissions": "rw"}],
                    "DeviceCgroupRules": ["c 1:3 r"]}},
    {"Image": "bb", "HostConfig": {"Binds": ["/h:/c:ro", "/a:/b:rw,z", "vol:/d"],
                                   "Mounts": [{"Type": "bind", "Source": "/h", "Target": "/m", "ReadOnly": True},
                                              {"Type": "volume", "Source": "v", "Target": "/v"},
                                              {"Type": "npipe", "Source": "a", "Target": "/c"}]}},
    {"Image": "bb", "HostConfig": {"SecurityOpt": ["seccomp=" + json.dumps(small_profile), "systempaths=unconfined",
                                                   "writable-cgroups=true", "apparmor=unconfined", "label=disable"],
                                   "CapAdd": ["cap_sys_admin", "ALL"], "CapDrop": ["chown"]}},
    {"Image": "bb", "HostConfig": {"LogConfig": {"Type": "local", "Config": {"max-size": "10m", "max-file": "3", "compress": "true"}},
                                   "RestartPolicy": {"Name": "always"}, "AutoRemove": True}},
    {"Image": "bb", "Runtime": "crun", "HostConfig": {"Runtime": "runc"}},
    {"Image": "bb", "Volumes": {"/data": {}}, "Domainname": "x", "Healthcheck": {"Test": ["CMD", "true"]},
     "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}, "MemorySwappiness": -1, "Isolation": "default",
                    "UsernsMode": "host", "ConsoleSize": [24, 80]},
     "NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": None}, "other": {}}}},
]:
    put("create", json.dumps(body))
put("create", b"web\0" + json.dumps({"Image": "busybox:latest", "Cmd": ["true"]}).encode())
put("create", b"-x\0{\"Image\":\"bb\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}")

# filters
for f in [{"status": {"running": True, "exited": True}}, {"status": ["created", "dead"]}, {"name": ["^web$", "(unclosed"]},
          {"label": ["app=web", "tier"]}, {"before": ["web"], "since": ["db"]}, {"ancestor": ["busybox", "sha256:abab", "alpine:3"]},
          {"until": ["10m"], "label!": ["x=y"], "label": ["app"]}, {"until": ["2026-11-29T04:21:32Z", "1"]},
          {"reference": ["bb*", "me/*:1", "[a-"]}, {"exited": ["137", "x"]}, {"id": ["0123"]}, {"health": ["healthy"]},
          {"dangling": ["true"]}, {"network": {"bridge": True}}]:
    put("filters", json.dumps(f))

# glob
for g in [b"bb*\0bb:latest", b"[a-z]*/app:?\0me/app:1", b"\\*\0*", b"[^a-c]x\0dx", b"*x[^z]*y\0xx/y", b"[\\]-\\]]\0]",
          b"registry.example:5000/*/*", b"*", b"[", b"a[b-"]:
    put("glob", g)

# change
for c in ['CMD ["sh", "-c", "echo hi"]\nENTRYPOINT /bin/run --flag\nENV A=1 B="two words"\nENV A=3\nenv LEGACY some value',
          "WORKDIR /app\nWORKDIR sub\nWORKDIR ../x\nUSER 1000:1000\nUSER 'a b'",
          'LABEL a=b "c d"=e\nLABEL legacy value here\nEXPOSE 80 53/udp 1000-2000/sctp\nVOLUME ["/data"]\nVOLUME /a /b\nSTOPSIGNAL SIGINT',
          "ENV\nLABEL =x\nEXPOSE 70000\nFROM scratch\nRUN true", "ENV a='unterminated\nCMD [\"not\", json"]:
    put("change", c)

# tar
def tar_bytes(fmt, members, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "file":
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                t.addfile(info)
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                t.addfile(info)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw

base = [("etc", "dir", None), ("etc/hostname", "file", b"box\n"), ("bin/sh", "sym", "busybox"), ("bin/ls", "link", "bin/sh")]
put("tar", tar_bytes(tarfile.USTAR_FORMAT, base))
put("tar", tar_bytes(tarfile.USTAR_FORMAT, base, gz=True))
put("tar", tar_bytes(tarfile.GNU_FORMAT, [("d/" + "n" * 150, "file", b"x" * 600), ("l", "sym", "t" * 120)]))
put("tar", tar_bytes(tarfile.PAX_FORMAT, [("p/" + "q" * 200, "file", b"pax"), ("s", "sym", "u" * 300)]))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as t:
    info = tarfile.TarInfo("x"); info.size = 1; t.addfile(info, io.BytesIO(b"1"))
put("tar", buf.getvalue())
put("tar", b"\0" * 1024)
put("tar", b"BZh91AY&SY")
put("tar", tar_bytes(tarfile.USTAR_FORMAT, base)[:700])
manifest = [{"Config": "abc.json", "RepoTags": ["bb:latest"], "Layers": ["l1/layer.tar"]}]
put("tar", tar_bytes(tarfile.USTAR_FORMAT, [("manifest.json", "file", json.dumps(manifest).encode()),
                                             ("abc.json", "file", b'{"rootfs":{"type":"layers","diff_ids":[]}}'),
                                             ("l1/layer.tar", "file", tar_bytes(tarfile.USTAR_FORMAT, base[:2]))]))

# manifest
for m in [manifest, [{"Config": "a.json", "RepoTags": None, "Layers": []}, {"Config": "b.json", "Layers": ["x"] * 20}],
          [], {"Config": "a"}, [{"RepoTags": ["x"]}]]:
    put("manifest", json.dumps(m))

# logs_query
for q in ["stdout=1&stderr=1&since=1795926092.5&until=10m&tail=3&timestamps=true&follow=0",
          "stdout=1&since=2026-11-29T04:21:32Z&tail=all", "stderr=true&until=-1h30m&tail=x",
          "stdout=yes&since=2026-11-29&until=2026-11-29T06:21:32%2B02:00&tail=18446744073709551616",
          "signal=SIGRTMIN%2B3&t=10&since=1.5h&until=300ms", "stdout=0&stderr=none", "since=-1795926092.000000001&stdout=1"]:
    put("logs_query", q)

# log_opts
for o in ["json-file\nmax-size=10m\nmax-file=3\ncompress=true", "local\nmax-size=1.5M\nmax-file=0\ncompress=false",
          "none", "none\nmax-size=1m", "syslog\nsyslog-address=udp://x", "\nmax-size=1kb\nmax-file=101",
          "json-file\nlabels=a", "local\nmax-size=1 KiB\nmax-file=-1", "fluentd", "json-file\nmax-size=0\nmax-file=x"]:
    put("log_opts", o)

# seccomp
put("seccomp", open(os.path.join(ROOT, "security", "src", "seccomp", "default.json"), "rb").read())
put("seccomp", json.dumps(small_profile))
put("seccomp", json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
    "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"], "minKernel": "5.3"},
                  "includes": {"arches": ["amd64"], "minKernel": "4.8"}}]}))
put("seccomp", json.dumps({"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "archMap": []}))
put("seccomp", json.dumps({"defaultAction": "SCMP_ACT_KILL", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}))

# security_opts
for s in ["no-new-privileges\nseccomp=unconfined\nsystempaths=unconfined\napparmor=unconfined\nlabel=disable",
          "writable-cgroups=true\nc 1:3 rwm\nNET_ADMIN\n/dev/fuse:/dev/f:rw",
          "seccomp=" + json.dumps(small_profile), "a *:* rwm\nALL\ncap_sys_admin\nb 7:* m",
          "no-new-privileges:true\nseccomp=builtin\napparmor=docker-default", "label=type:svirt_t\nsystempaths=confined\nbogus"]:
    put("security_opts", s)
