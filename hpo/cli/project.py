"""``hpo project ...``: projects, their members and settings, and the audit trail.

A study belongs to a project; members see and change its studies by role (viewer
reads; member creates and controls studies; owner also manages members and settings).
An admin creates projects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hpo.cli.common import JsonOpt, ServerOpt, TokenOpt, make_client
from hpo.cli.output import console, handle_errors, print_json
from hpo.vocabulary import Role

if TYPE_CHECKING:
    from hpo.team import ProjectPublic

__all__ = ["app"]

app = typer.Typer(
    help="Projects: members with roles, which code studies may run, the audit trail.",
    no_args_is_help=True,
)
ProjectName = Annotated[str, typer.Argument(help="Project name.", show_default=False)]
UserName = Annotated[str, typer.Argument(help="User name.", show_default=False)]
EntrypointsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--entrypoint",
        "-e",
        help="A module prefix its studies' train.entrypoint may come from (repeat it; "
        "'*': any). Built-in models are always allowed.",
        show_default=False,
    ),
]


@app.command("create")
def create(
    name: ProjectName,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    entrypoints: EntrypointsOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a project (admin token).

    Example: hpo project create vision -e team.vision
    """
    with handle_errors(), make_client(server, token) as client:
        project = client.create_project(
            name, description=description, entrypoints=entrypoints or ()
        )
    if json_out:
        print_json(project)
    else:
        console.print(f"created project [bold]{project.name}[/]")


@app.command("list")
def list_(server: ServerOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """The projects you belong to, with your role (admin: every project).

    Example: hpo project list
    """
    with handle_errors(), make_client(server, token) as client:
        rows = client.list_projects()
    if json_out:
        print_json(rows)
        return
    table = Table(title="Projects", header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("your role", no_wrap=True)
    table.add_column("studies", justify="right", no_wrap=True)
    table.add_column("entrypoints", overflow="fold")
    for p in rows:
        table.add_row(p.name, p.role or "admin", str(p.n_studies), ", ".join(p.entrypoints) or "—")
    console.print(table)


@app.command("show")
def show(
    name: ProjectName,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A project's settings and members.

    Example: hpo project show vision
    """
    with handle_errors(), make_client(server, token) as client:
        project = client.get_project(name)
        members = client.list_members(name)
    if json_out:
        print_json(
            {
                **project.model_dump(mode="json"),
                "members": [m.model_dump(mode="json") for m in members],
            }
        )
        return
    console.print(f"[bold]{project.name}[/]  {project.description}")
    console.print(f"studies: {project.n_studies}   your role: {project.role or 'admin'}")
    console.print(f"entrypoints: {', '.join(project.entrypoints) or 'built-in models only'}")
    console.print(_quota(project))
    table = Table(title="Members", header_style="bold")
    table.add_column("user", no_wrap=True)
    table.add_column("role", no_wrap=True)
    for m in members:
        table.add_row(m.user, m.role)
    console.print(table)


@app.command("set")
def set_(
    name: ProjectName,
    description: Annotated[
        str | None, typer.Option(help="A new description.", show_default=False)
    ] = None,
    entrypoints: EntrypointsOpt = None,
    clear_entrypoints: Annotated[
        bool, typer.Option("--no-entrypoints", help="Allow built-in models only.")
    ] = False,
    gpu_quota: Annotated[
        float | None,
        typer.Option(
            "--gpu-quota",
            min=0.001,
            help="Admin: the most GPUs its trials hold at once, fleet-wide.",
            show_default=False,
        ),
    ] = None,
    clear_gpu_quota: Annotated[
        bool, typer.Option("--no-gpu-quota", help="Admin: lift the GPU quota.")
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a project's description or entrypoint allowlist (owner or admin), or
    its GPU quota (admin).

    Example: hpo project set vision -e team.vision -e team.common --gpu-quota 16
    """
    allow = [] if clear_entrypoints else entrypoints
    with handle_errors(), make_client(server, token) as client:
        project = client.update_project(
            name,
            description=description,
            entrypoints=allow,
            gpu_quota=gpu_quota,
            clear_gpu_quota=clear_gpu_quota,
        )
    if json_out:
        print_json(project)
    else:
        console.print(
            f"project [bold]{project.name}[/]: entrypoints "
            f"{', '.join(project.entrypoints) or 'built-in models only'}; {_quota(project)}"
        )


def _quota(project: ProjectPublic) -> str:
    if project.gpu_quota is None:
        return "no GPU quota"
    return f"GPU quota {project.gpu_quota:g}"


@app.command("add-member")
def add_member(
    name: ProjectName,
    user: UserName,
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="viewer: reads; member: creates and controls studies; owner: also "
            "members and settings.",
        ),
    ] = "member",
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a user to a project, or change their role (owner or admin).

    Example: hpo project add-member vision alice --role owner
    """
    with handle_errors(), make_client(server, token) as client:
        member = client.add_member(name, user, role)
    if json_out:
        print_json(member)
    else:
        console.print(f"[bold]{member.user}[/] is a {member.role} of project {name}")


@app.command("remove-member")
def remove_member(
    name: ProjectName,
    user: UserName,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove a user from a project (owner or admin).

    Example: hpo project remove-member vision bob
    """
    with handle_errors(), make_client(server, token) as client:
        client.remove_member(name, user)
    if json_out:
        print_json({"removed": user, "project": name})
    else:
        console.print(f"removed [bold]{user}[/] from project {name}")


@app.command("events")
def events(
    name: Annotated[
        str | None, typer.Argument(help="Project (default: all yours).", show_default=False)
    ] = None,
    study: Annotated[str | None, typer.Option(help="Only this study's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most events.")] = 50,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The audit trail, newest first: who did what, and when.

    Example: hpo project events vision --study digits-1
    """
    with handle_errors(), make_client(server, token) as client:
        rows = client.list_events(project=name, study=study, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = Table(title="Audit trail", header_style="bold")
    for col in ("when", "who", "what", "project", "study"):
        table.add_column(col, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for e in rows:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()) if v is not None)
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            e.project or "—",
            e.study or "—",
            detail,
        )
    console.print(table)
