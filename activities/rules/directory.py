"""The approver directory in the rule files: register a public key, revoke one, keeping the admin's comments.

`redress keys new NAME --register` and `redress keys revoke NAME` edit the file
that holds `approvers:` (rules/approval.yaml as shipped) in place, round-trip
(ruamel keeps comments, order and flow style), then load the whole folder as
the worker would; an edit that would leave the folder invalid is undone. The
worker reads the directory afresh at every decision, so both take effect at the
next decision, pending proposals included, without a restart.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from activities.rules.loader import RulesInvalid, load_rules, rule_files
from redress import signatures


class DirectoryEditRefused(Exception):
    """The edit was not made; the message says why."""


def check_name(name: str) -> str:
    """A person's name as the directory and key files use it (redress.signatures.PERSON_NAME)."""
    problem = signatures.person_name_problem(name)
    if problem:
        raise DirectoryEditRefused(problem)
    return name


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _directory_file(rules: Path) -> Path:
    for path in rule_files(rules):
        if re.search(r"^approvers:", path.read_text(encoding="utf-8"), flags=re.MULTILINE):
            return path
    raise DirectoryEditRefused(f"no rule file in {rules} has an `approvers:` section")


def _edit(rules: Path, change: Any) -> Path:
    """Apply `change(document)` to the directory's file, keep it only if the folder still loads.

    One edit at a time (a lock beside the file): a console enrolling while an admin revokes must
    not write back the file it read before the revocation.
    """
    path = _directory_file(rules)
    with open(path.with_name(".directory.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = path.read_text(encoding="utf-8")
        yaml = _yaml()
        document = yaml.load(before)
        change(document)
        out = io.StringIO()
        yaml.dump(document, out)
        _replace(path, out.getvalue())
        try:
            load_rules(rules)
        except RulesInvalid as invalid:
            _replace(path, before)
            raise DirectoryEditRefused(
                "the rules would not load after this edit, so it was undone:\n  "
                + "\n  ".join(str(e) for e in invalid.errors)
            ) from None
    return path


def _replace(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.edit")
    staged.write_text(text, encoding="utf-8")
    os.chmod(staged, path.stat().st_mode & 0o777)
    os.replace(staged, path)


def _flow(**fields: Any) -> CommentedMap:
    entry = CommentedMap(fields)
    entry.fa.set_flow_style()
    return entry


def register(rules: Path, name: str, public_key: str, role: str | None) -> Path:
    """Give NAME this public key (adding them with `role` if they are new); returns the file edited."""
    check_name(name)

    def change(document: Any) -> None:
        approvers = document.setdefault("approvers", CommentedMap())
        entry = approvers.get(name)
        if entry is None:
            if role is None:
                raise DirectoryEditRefused(f"{name} is not in the directory yet: give their --role")
            approvers[name] = _flow(role=role, public_key=public_key)
            return
        if role is not None:
            entry["role"] = role
        entry["public_key"] = public_key

    return _edit(Path(rules), change)


def register_passkey(rules: Path, name: str, credential_id: str, public_key: str, label: str | None = None) -> Path:
    """Add a passkey to NAME's directory entry (they must be in the directory); returns the file edited.

    The console registers passkeys through here when it may enrol (`redress console --enroll`);
    otherwise it shows the person the entry for an admin to add (README, "Console").
    """
    check_name(name)

    def change(document: Any) -> None:
        entry = (document.get("approvers") or {}).get(name)
        if entry is None:
            raise DirectoryEditRefused(f"{name} is not in the approver directory: an admin adds them first")
        passkeys = entry.get("passkeys")
        if passkeys is None:
            passkeys = CommentedSeq()
            entry["passkeys"] = passkeys
        fields: dict[str, Any] = {"id": credential_id, "public_key": public_key, "added_on": date.today()}
        if label:
            fields["label"] = label
        passkeys.append(_flow(**fields))

    return _edit(Path(rules), change)


def revoke_passkey(rules: Path, name: str, credential_id: str, on: date | None = None) -> Path:
    """Take one of NAME's passkeys out of the directory for good (listed under `revoked_keys`)."""
    check_name(name)

    def change(document: Any) -> None:
        entry = (document.get("approvers") or {}).get(name)
        passkeys = (entry or {}).get("passkeys") or []
        found = next((p for p in passkeys if p.get("id") == credential_id), None)
        if entry is None or found is None:
            raise DirectoryEditRefused(f"{name} has no passkey {credential_id} in the directory: nothing to revoke")
        passkeys.remove(found)
        if not passkeys:
            del entry["passkeys"]
        _revoked(document).append(
            _flow(name=name, public_key=found["public_key"], revoked_on=on or date.today(), credential_id=credential_id)
        )

    return _edit(Path(rules), change)


def _revoked(document: Any) -> Any:
    revoked = document.get("revoked_keys")
    if revoked is None:
        revoked = CommentedSeq()
        document["revoked_keys"] = revoked
        document.yaml_set_comment_before_after_key(
            "revoked_keys", before="\nKeys that must never approve again (redress keys revoke NAME)."
        )
    return revoked


def revoke(rules: Path, name: str, on: date | None = None) -> Path:
    """Take NAME's key and every passkey out of the directory for good (listed under `revoked_keys`).

    All of them: revoking a person must leave nothing of theirs that signs. One passkey alone
    is `revoke_passkey`.
    """
    check_name(name)

    def change(document: Any) -> None:
        entry = (document.get("approvers") or {}).get(name)
        passkeys = list((entry or {}).get("passkeys") or [])
        if entry is None or not (entry.get("public_key") or passkeys):
            raise DirectoryEditRefused(f"{name} has no key or passkey in the directory: nothing to revoke")
        revoked = _revoked(document)
        if entry.get("public_key"):
            revoked.append(_flow(name=name, public_key=entry.pop("public_key"), revoked_on=on or date.today()))
        for passkey in passkeys:
            revoked.append(
                _flow(
                    name=name,
                    public_key=passkey["public_key"],
                    revoked_on=on or date.today(),
                    credential_id=passkey["id"],
                )
            )
        entry.pop("passkeys", None)

    return _edit(Path(rules), change)
