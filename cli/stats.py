"""``affdata stats``: what the store holds."""

from __future__ import annotations

from cli.common import DbOption, JsonOption, open_store, print_json, print_table


def stats(db: DbOption = None, json: JsonOption = False) -> None:
    """Count videos, frames, subjects, and labelled frames per task, per source and per split part.

    Example: affdata stats --json
    """
    from affdata.stats import store_stats

    result = store_stats(open_store(db))
    if json:
        print_json(result.to_dict())
        return
    print_table(
        ["videos", "frames", "subjects", "tracks", "label sources", "VA frames", "AU frames", "EXPR frames"],
        [[result.videos, result.frames, result.subjects, result.tracks, result.sources,
          result.labelled["va"], result.labelled["au"], result.labelled["expr"]]],
        title="Store",
    )
    if result.per_source:
        print_table(["source", "version", "kind", "task", "frames"],
                    [[r["source"], r["version"], r["kind"], r["task"], r["frames"]] for r in result.per_source],
                    title="Labelled frames per source")
    if result.per_split:
        print_table(["split", "version", "part", "videos", "frames", "VA", "AU", "EXPR"],
                    [[r["split"], r["version"], r["part"], r["videos"], r["frames"], r["va"], r["au"], r["expr"]]
                     for r in result.per_split],
                    title="Labelled frames per split part")
