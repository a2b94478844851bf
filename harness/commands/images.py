"""`harness images ...`: build local images, show the image map, run the private dockerd."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harness.errors import HarnessError

if TYPE_CHECKING:
    import docker


def register(app: typer.Typer) -> None:
    """Add the `images` command group to the harness CLI."""
    images = typer.Typer(help="Container images for the docker provider.", no_args_is_help=True)
    daemon = typer.Typer(
        help="The project's private dockerd (.tools/docker).", no_args_is_help=True
    )
    images.add_typer(daemon, name="dockerd")
    app.add_typer(images, name="images")

    @images.command("build")
    def build(
        only: list[str] = typer.Option(
            [], "--only", help="Image-map key to build (repeatable); default: all."
        ),
        force: bool = typer.Option(False, help="Rebuild even when the inputs did not change."),
        mirror: str = typer.Option(
            "http://deb.debian.org/debian", help="Debian mirror for debootstrap and apt."
        ),
        output: Path | None = typer.Option(
            None, help="Image-map file to write; default .tools/images.yaml."
        ),
    ) -> None:
        """Build local images from Debian packages and the project's binaries (no registry)."""
        from harness.images.build import (
            BuildOptions,
            BuildResult,
            build_all,
            present_local_images,
            write_image_map,
        )
        from harness.images.catalog import select
        from harness.spec.images import default_image_map_file

        try:
            chosen = select(only)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="--only") from None

        def show(r: BuildResult) -> None:
            line = f"  {r.name:<15} {r.outcome:<11} {r.tag:<42} {r.seconds:6.1f} s"
            typer.echo(line + (f"\n    {r.detail}" if r.detail else ""))

        client = _client()
        try:
            results = build_all(
                client,
                chosen,
                BuildOptions(mirror=mirror, force=force),
                strict=bool(only),
                progress=show,
            )
            path = output or default_image_map_file()
            write_image_map(path, present_local_images(client))
        except HarnessError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            client.close()
        typer.echo(f"image map: {path}")
        if any(r.outcome == "failed" for r in results):
            raise typer.Exit(1)

    @images.command("show")
    def show_map(
        file: Path | None = typer.Option(None, help="Image-map file; default .tools/images.yaml."),
    ) -> None:
        """Print the image map the docker provider would use (before a stack's `images:`)."""
        from harness.spec.images import resolve_image_map

        try:
            resolved = resolve_image_map(None, file)
        except HarnessError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for key, ref in resolved:
            extra = f"  (runs {ref.executable})" if ref.executable else ""
            gpu = "  [gpu]" if ref.gpu else ""
            typer.echo(f"  {key:<15} {ref.ref}{extra}{gpu}")

    @daemon.command("start")
    def daemon_start() -> None:
        """Start dockerd with its own folders and socket (installs docker.io if missing)."""
        from harness.images import dockerd

        try:
            paths, started = dockerd.start()
        except HarnessError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            ("started" if started else "already running") + f"; export DOCKER_HOST={paths.host}"
        )

    @daemon.command("stop")
    def daemon_stop() -> None:
        """Stop the private dockerd by the PID in its pidfile."""
        from harness.images import dockerd

        typer.echo("stopped" if dockerd.stop() else "not running")

    @daemon.command("env")
    def daemon_env() -> None:
        """Print the environment for testcontainers against the private dockerd (for `eval`)."""
        from harness.images import dockerd

        for key, value in dockerd.test_environment(dockerd.default_paths()).items():
            typer.echo(f"export {key}={value}")


def _client() -> docker.DockerClient:
    import docker

    from harness.images.dockerd import resolve_docker_host

    host = resolve_docker_host()
    try:
        return docker.DockerClient(base_url=host) if host else docker.from_env()
    except docker.errors.DockerException as exc:
        typer.echo(
            f"error: cannot reach a Docker engine ({exc}); start one with "
            "`harness images dockerd start` or set DOCKER_HOST",
            err=True,
        )
        raise typer.Exit(2) from None
