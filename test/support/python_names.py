"""Names a Python program uses from a jsii-generated module, and the names that module defines.

Used by test/python-example.test.ts (which makes the assertions); standard library only, no
third-party packages, so it runs on any Python >= 3.8 without PyPI.

    python3 python_names.py --bindings <generated>/cdk_orchestrator/__init__.py \
                            --example examples/python/app.py [--module cdk_orchestrator]

prints one JSON object:

    bindings: { names: [...exported names (__all__)...],
                types: { <Name>: { kind: class|struct|interface|enum, bases: [...], externalBases: [...],
                                   enumMembers: [...], members: { <member>: Member } } } }
        Member = { kind: method|property, static, positional: [...], keyword: [...],
                   required: [...], varargs, varkw, returns: Type|null }
        Type   = { class: <Name> } | { list: Type }      (null: a type of another module, or a builtin)
    example:  { usages: [ Usage ], unresolved: [ ... ] }
        Usage  = { kind: import|name|member|call, line, code, ...details below }
          import: name                  (from <module> import name)
          name:   name                  (<module alias>.name)
          member: owner, member, static (Owner.member / instance.member, including enum members)
          call:   owner, member, static, positional, keywords, starArgs, starKwargs
                  (member "__init__" for a constructor / struct; the arguments of that call)

The example's types are inferred simply and in source order: a name (or `self.x`) assigned a
constructor call, a method result or property of a known type, an annotated parameter, a for-loop
variable over a list, or an index into one. A value whose type is not known is not followed;
`unresolved` lists attribute accesses on expressions that mention the module but could not be typed,
so the test can refuse to pass silently.
"""
import argparse
import ast
import json
import sys

# ---------------------------------------------------------------------------------------------
# Bindings
# ---------------------------------------------------------------------------------------------


def dotted(node):
    """`a.b.c` as a string, or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return None if inner is None else inner + "." + node.attr
    return None


def parse_annotation(node, known):
    """A binding's annotation as a Type (see the module docstring), or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return parse_annotation(ast.parse(node.value, mode="eval").body, known)
        except SyntaxError:
            return None
    if isinstance(node, ast.Name):
        return {"class": node.id} if node.id in known else None
    if isinstance(node, ast.Subscript):
        outer = dotted(node.value)
        inner = node.slice
        if isinstance(inner, ast.Index):  # Python < 3.9
            inner = inner.value
        if outer in ("typing.Optional",):
            return parse_annotation(inner, known)
        if outer in ("typing.List", "typing.Sequence"):
            element = parse_annotation(inner, known)
            return None if element is None else {"list": element}
    return None


def decorator_names(func):
    names = []
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        names.append(dotted(target) or "")
    return names


def describe_function(func, static, known):
    names = decorator_names(func)
    is_property = "builtins.property" in names or "jsii.python.classproperty" in names
    args = func.args
    positional = [a.arg for a in list(getattr(args, "posonlyargs", [])) + list(args.args)]
    if positional and "builtins.staticmethod" not in names:
        positional = positional[1:]  # self / cls
    first_default = len(positional) - len(args.defaults)
    required = [name for i, name in enumerate(positional) if i < first_default]
    keyword = [a.arg for a in args.kwonlyargs]
    required += [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    return {
        "kind": "property" if is_property else "method",
        "static": static or "jsii.python.classproperty" in names,
        "positional": positional,
        "keyword": keyword,
        "required": required,
        "varargs": args.vararg is not None,
        "varkw": args.kwarg is not None,
        "returns": parse_annotation(func.returns, known),
    }


def read_bindings(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)

    exported = []
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    known = {c.name for c in classes}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            exported = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]

    types = {}
    for cls in classes:
        decos = decorator_names(cls)
        kind = "class"
        if "jsii.enum" in decos:
            kind = "enum"
        elif "jsii.data_type" in decos:
            kind = "struct"
        elif "jsii.interface" in decos:
            kind = "interface"
        bases, external = [], []
        base_nodes = list(cls.bases)
        # @jsii.implements(IFoo): the interface's members are the class's members too.
        for deco in cls.decorator_list:
            if isinstance(deco, ast.Call) and dotted(deco.func) == "jsii.implements":
                base_nodes += deco.args
        for base in base_nodes:
            name = dotted(base)
            if name in known:
                bases.append(name)
            elif name and name not in ("typing_extensions.Protocol", "enum.Enum"):
                external.append(name)
        members, enum_members = {}, []
        for item in cls.body:
            if isinstance(item, ast.Assign) and kind == "enum":
                enum_members += [t.id for t in item.targets if isinstance(t, ast.Name)]
            elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if item.name.startswith("_") and item.name != "__init__":
                    continue  # private, dunder (__eq__, __repr__...)
                names = decorator_names(item)
                if any(n.endswith(".setter") for n in names):
                    continue  # the getter was recorded
                static = "builtins.classmethod" in names or "builtins.staticmethod" in names
                members[item.name] = describe_function(item, static, known)
        types[cls.name] = {
            "kind": kind,
            "bases": bases,
            "externalBases": external,
            "enumMembers": enum_members,
            "members": members,
        }
    return {"names": exported, "types": types}


# ---------------------------------------------------------------------------------------------
# Example
# ---------------------------------------------------------------------------------------------

MODULE = ("module",)
# A value whose type is known not to be one of the module's (a str, an sns.ITopic...).
EXTERNAL = ("external",)


class Example(ast.NodeVisitor):
    def __init__(self, source, module, bindings):
        self.source = source
        self.module = module
        self.types = bindings["types"]
        self.env = {}  # name or dotted name ("self.x") -> inferred type
        self.usages = []
        self.unresolved = []
        self.inferred = {}  # id(expression node) -> its inferred type

    # -- helpers ---------------------------------------------------------------------------------

    def code(self, node):
        segment = ast.get_source_segment(self.source, node) or ""
        segment = " ".join(segment.split())
        return segment if len(segment) <= 160 else segment[:157] + "..."

    def use(self, kind, node, **details):
        code = self.code(node.func) + "(...)" if isinstance(node, ast.Call) else self.code(node)
        self.usages.append(dict(kind=kind, line=node.lineno, code=code, **details))

    def member(self, owner, name):
        """The Member `name` of type `owner` or of one of its bases in this module, or None."""
        seen, todo = set(), [owner]
        while todo:
            current = todo.pop(0)
            if current in seen or current not in self.types:
                continue
            seen.add(current)
            found = self.types[current]["members"].get(name)
            if found is not None:
                return found
            todo += self.types[current]["bases"]
        return None

    def from_type(self, t):
        """A bindings Type as an inferred type."""
        if t is None:
            return EXTERNAL
        if "class" in t:
            return ("instance", t["class"])
        return ("list", self.from_type(t["list"]))

    def ours(self, node):
        return self.inferred.get(id(node)) not in (None, EXTERNAL)

    def mentions_module(self, node):
        """Whether an expression of unknown type was derived from one of the module's values:
        its receiver chain (`a.b[0].c(...)`) or the arguments of a call in it have a module type."""
        while True:
            if self.ours(node):
                return True
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                node = node.value
            elif isinstance(node, ast.Call):
                arguments = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
                if any(self.ours(a) for a in arguments + [kw.value for kw in node.keywords]):
                    return True
                node = node.func
            else:
                return False

    def element(self, t):
        """The type of an element of a value of type t (iteration, indexing)."""
        if t == EXTERNAL:
            return EXTERNAL
        return t[1] if t is not None and t[0] == "list" else None

    def bind(self, target, inferred):
        key = dotted(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
        if key is None:
            for sub in ast.walk(target):  # tuple unpacking etc.: forget what it rebinds
                sub_key = dotted(sub) if isinstance(sub, (ast.Name, ast.Attribute)) else None
                if sub_key is not None:
                    self.env.pop(sub_key, None)
            return
        if inferred is None:
            self.env.pop(key, None)
        else:
            self.env[key] = inferred

    # -- expressions -----------------------------------------------------------------------------

    def evaluate(self, node):
        """Records the usages in `node` and returns its inferred type (None when unknown)."""
        if node is None:
            return None
        inferred = self.infer(node)
        self.inferred[id(node)] = inferred
        return inferred

    def infer(self, node):
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            key = dotted(node)
            if key is not None and key in self.env:  # e.g. self.orchestrator
                return self.env[key]
            base = self.evaluate(node.value)
            return self.attribute(node, base)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            base = self.evaluate(node.value)
            self.evaluate(node.slice)
            return self.element(base)
        if isinstance(node, ast.NamedExpr):
            inferred = self.evaluate(node.value)
            self.bind(node.target, inferred)
            return inferred
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for gen in node.generators:
                iterated = self.evaluate(gen.iter)
                self.bind(gen.target, self.element(iterated))
                for cond in gen.ifs:
                    self.evaluate(cond)
            if isinstance(node, ast.DictComp):
                self.evaluate(node.key)
                self.evaluate(node.value)
                return None
            element = self.evaluate(node.elt)
            return ("list", element) if isinstance(node, ast.ListComp) and element is not None else None
        if isinstance(node, ast.List):
            elements = [self.evaluate(e) for e in node.elts]
            known = [e for e in elements if e is not None]
            return ("list", known[0]) if known and len(known) == len(elements) else None
        if isinstance(node, ast.Lambda):
            self.evaluate(node.body)
            return None
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.evaluate(child)
        return None

    def attribute(self, node, base):
        if base is None:
            if self.mentions_module(node.value):
                self.unresolved.append({"line": node.lineno, "code": self.code(node)})
            return None
        kind = base[0]
        if kind == "module":
            self.use("name", node, name=node.attr)
            return ("class", node.attr)
        if kind in ("class", "instance"):
            owner, static = base[1], kind == "class"
            self.use("member", node, owner=owner, member=node.attr, static=static)
            found = self.member(owner, node.attr)
            if found is None:
                return EXTERNAL  # an enum member, an inherited Construct member, or a missing name (reported)
            if found["kind"] == "property":
                return self.from_type(found["returns"])
            return ("method", owner, node.attr, static)
        return EXTERNAL  # list methods, members of other modules' types

    def call(self, node):
        func = self.evaluate(node.func)
        for arg in node.args:
            self.evaluate(arg.value if isinstance(arg, ast.Starred) else arg)
        for kw in node.keywords:
            self.evaluate(kw.value)
        if func is None:
            return None
        details = dict(
            positional=sum(1 for a in node.args if not isinstance(a, ast.Starred)),
            keywords=[kw.arg for kw in node.keywords if kw.arg is not None],
            starArgs=any(isinstance(a, ast.Starred) for a in node.args),
            starKwargs=any(kw.arg is None for kw in node.keywords),
        )
        if func[0] == "class":
            self.use("call", node, owner=func[1], member="__init__", static=True, **details)
            return ("instance", func[1])
        if func[0] == "method":
            _, owner, name, static = func
            self.use("call", node, owner=owner, member=name, static=static, **details)
            found = self.member(owner, name)
            return self.from_type(found["returns"]) if found is not None else EXTERNAL
        return EXTERNAL if func == EXTERNAL else None

    # -- statements ------------------------------------------------------------------------------

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name == self.module:
                self.env[alias.asname or alias.name] = MODULE
            elif alias.name.startswith(self.module + "."):
                self.use("import", node, name=alias.name[len(self.module) + 1:])

    def visit_ImportFrom(self, node):
        if node.level or node.module is None:
            return
        if node.module == self.module:
            for alias in node.names:
                self.use("import", node, name=alias.name)
                if alias.name != "*":
                    self.env[alias.asname or alias.name] = ("class", alias.name)
        elif node.module.startswith(self.module + "."):
            self.use("import", node, name=node.module[len(self.module) + 1:])

    def visit_Assign(self, node):
        inferred = self.evaluate(node.value)
        for target in node.targets:
            self.target(target)
            self.bind(target, inferred)

    def visit_AnnAssign(self, node):
        inferred = self.evaluate(node.value) if node.value is not None else None
        declared = self.annotation(node.annotation)
        self.target(node.target)
        self.bind(node.target, declared or inferred)

    def visit_AugAssign(self, node):
        self.evaluate(node.value)
        self.target(node.target)

    def target(self, target):
        """Usages inside an assignment target (`x.a.b = ...` reads x.a)."""
        if isinstance(target, ast.Attribute):
            self.evaluate(target.value)
        elif isinstance(target, ast.Subscript):
            self.evaluate(target.value)
            self.evaluate(target.slice)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.target(element)

    def visit_For(self, node):
        iterated = self.evaluate(node.iter)
        self.bind(node.target, self.element(iterated))
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def annotation(self, node):
        """A parameter / variable annotation naming a type of the module, as an instance type."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        inferred = self.evaluate(node)
        return ("instance", inferred[1]) if inferred is not None and inferred[0] == "class" else None

    def visit_FunctionDef(self, node):
        for deco in node.decorator_list:
            self.evaluate(deco)
        args = node.args
        for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            self.evaluate(default)
        every = list(getattr(args, "posonlyargs", [])) + list(args.args) + list(args.kwonlyargs)
        for arg in every:
            self.bind(ast.Name(id=arg.arg), self.annotation(arg.annotation))
        self.annotation(node.returns)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for base in node.bases:
            self.evaluate(base)
        for kw in node.keywords:
            self.evaluate(kw.value)
        for stmt in node.body:
            self.visit(stmt)

    def generic_visit(self, node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.evaluate(child)
            else:
                self.visit(child)


def read_example(path, module, bindings):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    example = Example(source, module, bindings)
    example.visit(tree)
    return {"usages": example.usages, "unresolved": example.unresolved}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bindings", required=True, help="the generated module's __init__.py")
    parser.add_argument("--example", help="the Python program to read")
    parser.add_argument("--module", default="cdk_orchestrator", help="the generated module's name")
    options = parser.parse_args(argv)
    bindings = read_bindings(options.bindings)
    result = {"bindings": bindings}
    if options.example:
        result["example"] = read_example(options.example, options.module, bindings)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
