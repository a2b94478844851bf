"""A real nginx of a test's own on 127.0.0.1: the smallest configuration around its `server`."""

from __future__ import annotations

import os
from pathlib import Path

from harness.tools import find_binary


def nginx_argv(d: Path, port: int, server: str, http: str = "", connections: int = 64) -> list[str]:
    """Write `d`/nginx.conf (a folder of its own, created here) listening on 127.0.0.1:`port`
    with `server` inside its server block and `http` beside it; return the command line."""
    d.mkdir()
    # As root, nginx's workers would run as nobody and could not read files under tmp_path.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""daemon off;
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    {http}
    server {{
        listen 127.0.0.1:{port};
        {server}
    }}
}}
""")
    return [str(find_binary("nginx")), "-p", str(d), "-c", str(conf), "-e", str(d / "error.log")]
