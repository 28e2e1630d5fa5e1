#!/usr/bin/env python3
"""Compares the templates of two cloud assemblies: the TypeScript example's and the Python example's.

    compare_templates.py <typescript cdk.out> <python cdk.out>

Every CloudFormation template (`*.template.json`, nested stacks and stages included) must be in both
and identical, except the `AWS::CDK::Metadata` resources (they name the app's language). Exits 1 on
the first difference, naming the template, the section and the resource (or output, parameter, ...)
and the first differing path in it with both values; prints what it compared otherwise.
Standard library only.
"""
import json
import os
import sys

LEFT, RIGHT = "TypeScript", "Python"


def templates(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".template.json"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, root)] = path
    return found


def load(path):
    with open(path, encoding="utf-8") as fp:
        template = json.load(fp)
    resources = template.get("Resources", {})
    metadata = [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == "AWS::CDK::Metadata"]
    for key in metadata:
        del resources[key]
    return template, len(metadata)


def short(value, limit=300):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


def first_difference(left, right, path=""):
    """The first path where left and right differ, with both values, or None."""
    if type(left) is not type(right):
        return path, left, right
    if isinstance(left, dict):
        for key in list(left) + [k for k in right if k not in left]:
            if key not in right or key not in left:
                return f"{path}.{key}".lstrip("."), left.get(key, "<absent>"), right.get(key, "<absent>")
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list):
        for i, (a, b) in enumerate(zip(left, right)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(left) != len(right):
            return f"{path} (length)", len(left), len(right)
        return None
    return None if left == right else (path, left, right)


def main(left_root, right_root):
    left_files, right_files = templates(left_root), templates(right_root)
    if not left_files:
        return f"no *.template.json in {left_root}"
    for name in sorted(set(left_files) | set(right_files)):
        if name not in right_files or name not in left_files:
            only = LEFT if name in left_files else RIGHT
            return f"template {name} is only in the {only} app's assembly"

    counts = {"templates": 0, "resources": 0, "entries": 0, "metadata": 0}
    for name in sorted(left_files):
        left, left_meta = load(left_files[name])
        right, right_meta = load(right_files[name])
        counts["templates"] += 1
        counts["metadata"] += left_meta + right_meta
        counts["resources"] += len(left.get("Resources", {}))
        # Resources first (the most useful to name), then the other sections in the template's order.
        sections = ["Resources"] + [s for s in list(left) + list(right) if s != "Resources"]
        for section in dict.fromkeys(sections):
            a, b = left.get(section, "<absent>"), right.get(section, "<absent>")
            if not (isinstance(a, dict) and isinstance(b, dict)):
                if a != b:
                    return f"{name}: section {section} differs: {LEFT} {short(a)}, {RIGHT} {short(b)}"
                continue
            for key in list(a) + [k for k in b if k not in a]:
                what = f"resource {key}" if section == "Resources" else f"{section}.{key}"
                if key not in b or key not in a:
                    only = LEFT if key in a else RIGHT
                    kind = (a.get(key) or b.get(key) or {}).get("Type", "") if section == "Resources" else ""
                    return f"{name}: {what}{f' ({kind})' if kind else ''} is only in the {only} template"
                found = first_difference(a[key], b[key])
                if found:
                    path, x, y = found
                    kind = a[key].get("Type", "") if section == "Resources" and isinstance(a[key], dict) else ""
                    return (f"{name}: {what}{f' ({kind})' if kind else ''} differs at {path or '(root)'}:\n"
                            f"  {LEFT}: {short(x)}\n  {RIGHT}: {short(y)}")
                counts["entries"] += 1
    if counts["metadata"] == 0:
        # The apps ran with metadata off? Then this check would not have seen the language difference.
        print("[test:python] note: neither assembly has CDKMetadata resources")
    print(f"[test:python] templates identical except CDKMetadata: {counts['templates']} templates, "
          f"{counts['resources']} resources, {counts['entries']} entries in all sections")
    return None


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    problem = main(sys.argv[1], sys.argv[2])
    if problem:
        print(f"[test:python] first difference: {problem}", file=sys.stderr)
        sys.exit(1)
