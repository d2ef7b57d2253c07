"""The access review as a reviewer reads it: JSON (everything), CSV (a spreadsheet), HTML (one
self-contained page to read, print and sign).

CSV: by default one file with a `section` column first and the union of every section's columns
(each row fills its own section's); `section=users` (or resources, orphans, dormant, external,
summary) gives that section alone with its own columns. Cells a spreadsheet would run as a formula
(starting with = + - @, tab or carriage return, and not a number) are prefixed with a quote (OWASP
"CSV injection"): a directory attribute must not become a formula on the reviewer's machine.

HTML: inline CSS only, no script, no external asset, every value passed through html.escape.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import asdict
from typing import Any

import orjson

from .review import Reach, Review

SECTIONS = ("summary", "users", "resources", "orphans", "dormant", "external")
COLUMNS = {  # per section, in order; rows() fills them
    "summary": ["metric", "value"],
    "users": [
        "userName",
        "displayName",
        "scim_id",
        "directory_active",
        "external",
        "expires",
        "target",
        "account_id",
        "enabled",
        "role",
        "role_rule",
        "groups",
        "folders",
        "collections",
        "projects",
        "last_login",
        "last_activity",
        "desired_role",
        "desired_enabled",
        "desired",
        "differs",
        "differences",
    ],
    "resources": [
        "target",
        "kind",
        "resource",
        "resource_id",
        "userName",
        "email",
        "account_id",
        "scim_id",
        "rights",
        "via",
        "rule",
        "note",
    ],
    "orphans": ["target", "account_id", "email", "role", "enabled", "groups", "last_login", "note"],
    "dormant": ["target", "account_id", "email", "userName", "scim_id", "last_login", "days_since_login"],
    "external": [
        "userName",
        "displayName",
        "scim_id",
        "directory_active",
        "matched",
        "expires",
        "expired",
        "days_left",
        "accounts",
    ],
}
FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def as_json(review: Review) -> bytes:
    data = asdict(review)
    for row, user in zip(data["users"], review.users, strict=True):
        row["differs"] = user.differs
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


# rows: one flat dict of strings per line, shared by CSV and HTML ------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def rows(review: Review, section: str) -> list[dict[str, str]]:
    if section == "summary":
        return [{"metric": metric, "value": str(value)} for metric, value in summary_items(review)]
    if section == "users":
        return [
            {
                "userName": u.user_name,
                "displayName": u.display_name,
                "scim_id": u.scim_id,
                "directory_active": _text(u.directory_active),
                "external": _text(u.external),
                "expires": _text(u.expires),
                "target": u.target,
                "account_id": _text(u.account_id),
                "enabled": _text(u.enabled) if u.account_id else "no account",
                "role": _text(u.role),
                "role_rule": u.role_rule,
                "groups": _text(u.groups),
                "folders": _reach(u.folders),
                "collections": _reach(u.collections),
                "projects": _reach(u.projects),
                "last_login": _text(u.last_login) or ("never" if u.account_id else ""),
                "last_activity": _text(u.last_activity),
                "desired_role": _text(u.desired_role),
                "desired_enabled": _text(u.desired_enabled),
                "desired": _text([_desired_line(e) for e in u.desired]),
                "differs": _text(u.differs),
                "differences": _text(u.differences),
            }
            for u in review.users
        ]
    if section == "resources":
        out = []
        for r in review.resources:
            base = {"target": r.target, "kind": r.kind, "resource": r.name, "resource_id": _text(r.id)}
            for x in r.reachers:
                out.append(
                    {
                        **base,
                        "userName": _text(x.user_name),
                        "email": x.email,
                        "account_id": x.account_id,
                        "scim_id": _text(x.scim_id),
                        "rights": _text(x.rights),
                        "via": x.via,
                        "rule": x.rule,
                        "note": "" if x.scim_id else "no directory user",
                    }
                )
            reached = {x.via for x in r.reachers}
            for g in r.grants:  # a grant nobody (enabled) holds is still a grant a reviewer signs for
                via = g["principal"].removeprefix("group ")
                if via not in reached and not (g["principal"].startswith("project") and r.reachers):
                    out.append(
                        {
                            **base,
                            "rights": _text(g["rights"]),
                            "via": g["principal"],
                            "rule": g["rule"],
                            "note": "no enabled member",
                        }
                    )
            if not r.grants:
                out.append({**base, "note": r.note or "no grants"})
        return out
    if section == "orphans":
        return [
            {
                "target": o.target,
                "account_id": o.account_id,
                "email": o.email,
                "role": o.role,
                "enabled": _text(o.enabled),
                "groups": _text(o.groups),
                "last_login": _text(o.last_login) or "never",
                "note": o.note,
            }
            for o in review.orphans
        ]
    if section == "dormant":
        return [
            {
                "target": d.target,
                "account_id": d.account_id,
                "email": d.email,
                "userName": _text(d.user_name),
                "scim_id": _text(d.scim_id),
                "last_login": _text(d.last_login) or "never",
                "days_since_login": "never" if d.days_since_login is None else str(d.days_since_login),
            }
            for d in review.dormant
        ]
    if section == "external":
        return [
            {
                "userName": e.user_name,
                "displayName": e.display_name,
                "scim_id": e.scim_id,
                "directory_active": _text(e.directory_active),
                "matched": _text(e.matched),
                "expires": _text(e.expires),
                "expired": _text(e.expired),
                "days_left": _text(e.days_left),
                "accounts": _text(e.accounts),
            }
            for e in review.external
        ]
    raise ValueError(f"section is one of {', '.join(SECTIONS)}")


def _desired_line(entry: dict[str, Any]) -> str:
    """One entry of the desired-access model: what, the rule and fact behind it, the guardrail's word."""
    rights = f": {', '.join(r.rsplit('::', 1)[-1] for r in entry['rights'])}" if entry["rights"] else ""
    why = entry["rule"] + (f" via {entry['via']}" if entry["via"] else "")
    if not entry["allowed"]:
        return f"withheld {entry['kind']} {entry['subject']}{rights} ({entry['guardrail']})"
    return f"{entry['kind']} {entry['subject']}{rights} ({why})"


def _reach(items: list[Reach]) -> str:
    return "; ".join(str(i) for i in items)


def summary_items(review: Review) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [(f"directory.{k}", v) for k, v in review.summary["directory"].items()]
    for target, figures in review.summary["targets"].items():
        items += [(f"{target}.{k}", v) for k, v in figures.items()]
    items += [(f"sections.{k}", v) for k, v in review.summary["sections"].items()]
    return items


# CSV -------------------------------------------------------------------------------------------------
def _safe(cell: str) -> str:
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def as_csv(review: Review, section: str | None = None) -> str:
    if section is not None:
        table, columns = rows(review, section), COLUMNS[section]
    else:
        table = [{"section": name, **row} for name in SECTIONS for row in rows(review, name)]
        columns = ["section"]
        for name in SECTIONS:
            columns += [c for c in COLUMNS[name] if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\r\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: _safe(v) for k, v in row.items()})
    return out.getvalue()


# HTML ------------------------------------------------------------------------------------------------
CSS = """
body{font:13px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#111;margin:24px;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px;border-bottom:2px solid #333}
h3{font-size:14px;margin:16px 0 4px} .meta,.hint{color:#444} .hint{margin:2px 0 8px}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:4px 0 12px} th,td{border:1px solid #bbb;padding:3px 5px;
vertical-align:top;text-align:left;font-size:12px} th{background:#eee} td ul{margin:0;padding-left:14px}
tr.differs td{background:#fdecea} .flag{font-weight:bold;color:#a40000} small{color:#555}
table.figures{width:auto} table.figures td.n{text-align:right;font-variant-numeric:tabular-nums}
nav a{margin-right:12px} .signoff{break-inside:avoid;page-break-inside:avoid;border:2px solid #333;padding:12px 16px;
margin-top:28px} .signoff td{height:34px;border:none;border-bottom:1px solid #333;font-size:13px}
.signoff th{background:none;border:none;width:160px;font-size:13px} .box{font-size:15px;margin-right:18px}
@media print{body{margin:0;max-width:none} nav{display:none} thead{display:table-header-group}
tr{break-inside:avoid;page-break-inside:avoid} h2{break-after:avoid;page-break-after:avoid}}
@page{size:A4 landscape;margin:12mm}
"""


def _e(value: Any) -> str:
    return html.escape(_text(value), quote=True)


def _list(items: list[Any]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>" if items else ""


def _reach_html(items: list[Reach]) -> str:
    return (
        "<ul>"
        + "".join(
            f"<li>{_e(i.resource)}: <b>{_e(', '.join(i.rights))}</b> <small>via {_e(i.via)}; {_e(i.rule)}</small></li>"
            for i in items
        )
        + "</ul>"
        if items
        else ""
    )


def _table(headers: list[str], body: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    if not body:
        return '<p class="hint">None.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary(review: Review) -> str:
    s = review.summary
    directory = "".join(f"<tr><th>{_e(k)}</th><td class=n>{_e(v)}</td></tr>" for k, v in s["directory"].items())
    targets = list(s["targets"])
    metrics = list(dict.fromkeys(k for figures in s["targets"].values() for k in figures))
    per_target = "".join(
        f"<tr><th>{_e(m)}</th>"
        + "".join(f"<td class=n>{_e(s['targets'][t].get(m, ''))}</td>" for t in targets)
        + "</tr>"
        for m in metrics
    )
    sections = "".join(f"<tr><th>{_e(k)}</th><td class=n>{_e(v)}</td></tr>" for k, v in s["sections"].items())
    head = "".join(f"<th>{_e(t)}</th>" for t in targets)
    return (
        f'<section id="summary"><h2>Summary</h2><table class="figures"><thead><tr><th>directory</th><th></th>'
        f"</tr></thead><tbody>{directory}</tbody></table>"
        f'<table class="figures"><thead><tr><th>target</th>{head}</tr></thead><tbody>{per_target}</tbody></table>'
        f'<table class="figures"><thead><tr><th>section</th><th>rows</th></tr></thead><tbody>{sections}'
        "</tbody></table></section>"
    )


def _users(review: Review) -> str:
    body = []
    for u in review.users:
        account = (
            "no account"
            if u.account_id is None
            else f"<code>{_e(u.account_id)}</code><br>{'enabled' if u.enabled else 'disabled'}"
        )
        directory = ("active" if u.directory_active else "inactive") + (
            f"<br>external{', expires ' + _e(u.expires) if u.expires else ''}" if u.external else ""
        )
        reach = "".join(
            f"<b>{kind}</b>{_reach_html(items)}"
            for kind, items in (("folders", u.folders), ("collections", u.collections), ("projects", u.projects))
            if items
        )
        differs = f'<span class="flag">differs</span>{_list(u.differences)}' if u.differs else "as the policy wants"
        wanted = _list([_desired_line(e) for e in u.desired if e["kind"] != "group"])
        body.append(
            f"<tr{' class=differs' if u.differs else ''}><td>{_e(u.user_name)}<br><small>{_e(u.display_name)}"
            f"</small></td><td>{directory}</td><td>{_e(u.target)}</td><td>{account}</td>"
            f"<td>{_e(u.role)}<br><small>{_e(u.role_rule)}</small></td><td>{_list(u.groups)}</td>"
            f"<td>{reach}</td><td>{_e(u.last_login or ('never' if u.account_id else ''))}</td>"
            f"<td>{_e(u.last_activity)}</td><td><small>{wanted}</small></td><td>{differs}</td></tr>"
        )
    differing = review.summary["sections"]["users_differing"]
    return (
        '<section id="users"><h2>Users</h2><p class="hint">Every directory user in every target: the account '
        "as the target holds it, what it reaches and why (rule, group), and where it differs from what the "
        f"directory and the policy want ({differing} row(s) differ).</p>"
        + _table(
            [
                "user",
                "directory",
                "target",
                "account",
                "role (rule)",
                "groups",
                "reaches (via group; rule)",
                "last login",
                "last activity",
                "the policy gives (rule; guardrail)",
                "compared with the policy",
            ],
            body,
        )
        + "</section>"
    )


def _resources(review: Review) -> str:
    parts = [
        '<section id="resources"><h2>Resources</h2><p class="hint">Who reaches each governed folder, collection '
        "and project (enabled accounts), with which rights, through which group, by which rule.</p>"
    ]
    for r in review.resources:
        parts.append(f"<h3>{_e(r.target)} {_e(r.kind)} {_e(r.name)} <small><code>{_e(r.id)}</code></small></h3>")
        if r.note:
            parts.append(f'<p class="hint">{_e(r.note)}</p>')
        grants = [
            f"<tr><td>{_e(g['principal'])}</td><td>{_e(g['rights'])}</td><td>{_e(g['rule'])}</td>"
            f"<td class=n>{_e(g['members'])}</td></tr>"
            for g in r.grants
        ]
        if grants:
            parts.append(_table(["granted to", "rights", "rule", "members"], grants))
        people = [
            f"<tr><td>{_e(x.user_name or '(no directory user)')}</td><td>{_e(x.email)}</td>"
            f"<td>{_e(x.rights)}</td><td>{_e(x.via)}</td><td>{_e(x.rule)}</td></tr>"
            for x in r.reachers
        ]
        if people:
            parts.append(_table(["person", "email", "rights", "via", "rule"], people))
    return "".join(parts) + "</section>"


def _simple(review: Review, section: str, title: str, hint: str) -> str:
    table, headers = rows(review, section), COLUMNS[section]
    body = ["<tr>" + "".join(f"<td>{_e(row.get(c))}</td>" for c in headers) + "</tr>" for row in table]
    return (
        f'<section id="{section}"><h2>{_e(title)}</h2><p class="hint">{_e(hint)}</p>{_table(headers, body)}</section>'
    )


def as_html(review: Review) -> str:
    s = review.summary["sections"]
    nav = " ".join(f'<a href="#{name}">{name}</a>' for name in (*SECTIONS, "signoff"))
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>Access review {_e(review.generated)}</title><style>{CSS}</style></head><body>",
            "<header><h1>Access review</h1>",
            f'<p class="meta">Generated {_e(review.generated)} · policy {_e(review.policy_source)} '
            f"<code>{_e(review.policy_digest)}</code> · "
            f"dormant after {_e(review.dormant_days)} days without a login</p>",
            f'<p class="meta">{_e(s["users"])} user rows ({_e(s["users_differing"])} differ from the policy), '
            f"{_e(s['resources'])} resources, {_e(s['orphans'])} orphans, {_e(s['dormant'])} dormant, "
            f"{_e(s['external'])} external users ({_e(s['expired'])} expired)</p></header>",
            f"<nav>{nav}</nav>",
            _summary(review),
            _users(review),
            _resources(review),
            _simple(
                review,
                "orphans",
                "Orphans",
                "Accounts in a target that no directory user accounts for (the "
                "bridge's service account excepted). Enabled ones can still sign in.",
            ),
            _simple(
                review,
                "dormant",
                "Dormant accounts",
                f"Enabled accounts with no login in the last {review.dormant_days} days, or never.",
            ),
            _simple(
                review,
                "external",
                "External users",
                "Users the policy's guardrails.external rules match, and "
                "when their access ends (after that date the bridge disables them without any directory change).",
            ),
            '<section id="signoff" class="signoff"><h2>Sign-off</h2>',
            "<p>I have reviewed the access listed above, generated at "
            f"{_e(review.generated)} under policy <code>{_e(review.policy_digest)}</code>.</p>",
            '<p><span class="box">☐ approved as listed</span><span class="box">☐ approved, with the changes noted '
            'below</span><span class="box">☐ not approved</span></p>',
            "<table><tbody><tr><th>Reviewer name</th><td></td></tr><tr><th>Role / team</th><td></td></tr>"
            "<tr><th>Date</th><td></td></tr><tr><th>Signature</th><td></td></tr>"
            "<tr><th>Changes requested</th><td></td></tr><tr><th></th><td></td></tr></tbody></table></section>",
            "</body></html>\n",
        ]
    )


def render(review: Review, fmt: str, section: str | None = None) -> bytes:
    if fmt == "json":
        return as_json(review)
    if fmt == "csv":
        return as_csv(review, section).encode()
    if fmt == "html":
        return as_html(review).encode()
    raise ValueError(f"format is one of {', '.join(FORMATS)}")
