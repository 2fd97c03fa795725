"""``affdata annotate``: the annotation studio (users, campaigns, the web server, proxies, reports)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import DbOption, JsonOption, note, open_store, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="The annotation studio: a web app for VA tracing and AU / expression labelling by a team.")
user_app = typer.Typer(no_args_is_help=True, help="Studio users (annotators and admins).")
campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns: a task over (video, track) items, and who labels what.")
app.add_typer(user_app, name="user")
app.add_typer(campaign_app, name="campaign")

ProxyDirOption = Annotated[Path | None, typer.Option("--proxy-dir", help="Where browser proxies are cached. Default: beside a SQLite store (STORE.proxies), else ~/.cache/affdata/proxies.")]


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="annotator or admin")] = "annotator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin instead of generating one.")] = False,
    db: DbOption = None,
) -> None:
    """Add a user. Without --password-stdin a one-time password is generated and printed once.

    Example: affdata annotate user add alice --role annotator
    """
    from affdata.annotate.users import add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    made = add_user(open_store(db), name, role, password)
    if password is None:
        print(f"user {name} ({role}) added; password (shown once): {made}")
    else:
        print(f"user {name} ({role}) added")


@user_app.command("list")
def user_list(db: DbOption = None, json: JsonOption = False) -> None:
    """List users. Example: affdata annotate user list"""
    from affdata.annotate.users import list_users

    found = list_users(open_store(db))
    if json:
        print_json([{"name": u.name, "role": u.role, "disabled": u.disabled} for u in found])
        return
    print_table(["name", "role", "disabled"], [[u.name, u.role, u.disabled] for u in found])


@user_app.command("disable")
def user_disable(name: str, db: DbOption = None) -> None:
    """Disable a user and end their sessions (their labels stay). Example: affdata annotate user disable bob"""
    from affdata.annotate.users import disable_user

    disable_user(open_store(db), name)
    print(f"user {name} disabled")


@campaign_app.command("create")
def campaign_create(
    name: str,
    task: Annotated[str, typer.Option(help="va, au or expr")],
    video: Annotated[list[str] | None, typer.Option("--video", "-v", help="A video name; repeat for several.")] = None,
    split: Annotated[str | None, typer.Option(help="Take the videos of a split part instead (with --part).")] = None,
    part: Annotated[str | None, typer.Option(help="The split's part.")] = None,
    track: Annotated[list[str] | None, typer.Option("--track", help="Only these tracks (main, left, right).")] = None,
    classes: Annotated[str | None, typer.Option(help="AUs (AU1,AU12 or a set: abaw2020) or expressions (happiness,... or an order: abaw2020).")] = None,
    per_item: Annotated[int, typer.Option(help="Annotators per item.")] = 1,
    mode: Annotated[str, typer.Option(help="VA: 2d (one pass) or 1d (valence, then arousal).")] = "2d",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Create a campaign over videos or a split part.

    Example: affdata annotate campaign create va-pilot --task va -v clip1 -v clip2 --per-item 2
    """
    from affdata.annotate.campaigns import create_campaign

    c = create_campaign(open_store(db), name, task, videos=video, split=split, part=part, tracks=track,
                        classes=classes.split(",") if classes else None, per_item=per_item, mode=mode)
    if json:
        print_json(c.to_dict())
        return
    print(f"campaign {c.name} ({c.task}) created with id {c.id}")


@campaign_app.command("list")
def campaign_list(db: DbOption = None, json: JsonOption = False) -> None:
    """List campaigns. Example: affdata annotate campaign list"""
    from affdata.annotate.campaigns import list_campaigns

    found = [c.to_dict() for c in list_campaigns(open_store(db))]
    if json:
        print_json(found)
        return
    print_table(["id", "name", "task", "per item", "classes"],
                [[c["id"], c["name"], c["task"], c["per_item"], ",".join(c["class_names"])] for c in found])


@campaign_app.command("assign")
def campaign_assign(
    campaign: str,
    user: Annotated[list[str], typer.Option("--user", "-u", help="A user; repeat. Round robin over them unless --video is given.")],
    video: Annotated[str | None, typer.Option(help="Assign this one video's track to the (single) user.")] = None,
    track: Annotated[str, typer.Option(help="The track, with --video.")] = "main",
    db: DbOption = None,
) -> None:
    """Assign items: round robin over users (per-item annotators each), or one item by hand.

    Example: affdata annotate campaign assign va-pilot -u alice -u bob
    """
    from affdata.annotate.assignments import assign, assign_round_robin

    store = open_store(db)
    if video:
        if len(user) != 1:
            raise typer.BadParameter("with --video give exactly one --user")
        print(f"assignment {assign(store, campaign, user[0], video, track)}")
    else:
        print(f"{assign_round_robin(store, campaign, user)} new assignments")


@campaign_app.command("progress")
def campaign_progress(campaign: str, db: DbOption = None, json: JsonOption = False) -> None:
    """Progress per annotator. Example: affdata annotate campaign progress va-pilot"""
    from affdata.annotate.campaigns import progress

    p = progress(open_store(db), campaign)
    if json:
        print_json(p)
        return
    print_table(["user", "open", "draft", "submitted"],
                [[u, c["open"], c["draft"], c["submitted"]] for u, c in p["users"].items()], title=campaign)


@app.command()
def consensus(campaign: str, db: DbOption = None, json: JsonOption = False) -> None:
    """Write the consensus of a campaign's annotators as source CAMPAIGN-consensus.

    Example: affdata annotate consensus va-pilot
    """
    from affdata.annotate.review import campaign_consensus

    report = campaign_consensus(open_store(db), campaign)
    if json:
        print_json(report)
        return
    print(f"consensus {report['source']} of {', '.join(report['sources'])}: frames {report['frames']}")


@app.command()
def report(campaign: str, out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and summary.json.")],
           db: DbOption = None, json: JsonOption = False) -> None:
    """Per item: traces (or label rows) of every annotator with the consensus, CCC / kappa, lags, flags, as PNG.

    Example: affdata annotate report va-pilot --out review/
    """
    from affdata.annotate.review import write_report

    summary = write_report(open_store(db), campaign, out)
    if json:
        print_json(summary)
        return
    print_table(["video", "track", "annotators", "lowest agreement", "flagged", "png"],
                [[i["video"], i["track"], ", ".join(i["annotators"]), i["lowest_agreement"], i["flagged"], i["png"]]
                 for i in summary["items"]], title=f"{campaign}: {out}")


@app.command()
def proxies(video: Annotated[list[str] | None, typer.Option("--video", "-v", help="Only these videos.")] = None,
            proxy_dir: ProxyDirOption = None, db: DbOption = None, json: JsonOption = False) -> None:
    """Make browser proxies ahead of time for videos a browser cannot play (HEVC, GIF, frame folders...).

    Example: affdata annotate proxies
    """
    from affdata.annotate.proxy import default_proxy_dir, make_proxies

    store = open_store(db)
    done = make_proxies(store, proxy_dir or default_proxy_dir(store), video)
    if json:
        print_json(done)
        return
    print_table(["video", "status"], [[d["video"], d["status"]] for d in done])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
    proxy_dir: ProxyDirOption = None,
    secure_cookie: Annotated[bool, typer.Option("--secure-cookie", help="Mark the session cookie Secure (behind HTTPS).")] = False,
    db: DbOption = None,
) -> None:
    """Run the studio web application (Starlette on uvicorn) over the store.

    Example: affdata annotate serve --db lab.db --port 8000
    """
    from affdata.annotate.web.serve import serve as run_server

    store = open_store(db)
    run_server(store, host=host, port=port, proxy_dir=proxy_dir, secure_cookie=secure_cookie,
               on_ready=lambda url: note(f"annotation studio at {url} (Ctrl-C stops it)"))
