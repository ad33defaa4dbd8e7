"""An import-linter contract for the two kinds of module (see ``.importlinter``).

Interface modules (named in the contract: admin, api, views, urls, consumers, management
commands, the demo, the project's wiring) sit on top and may import anything. Every other
module of the apps is a domain module: it never imports an interface module, and imports
only its own app or the apps below it, in the order the contract lists them (lowest first).
Import-linter's own contracts cannot say "every module but these", hence this one.
"""

import re

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _pattern(expression: str) -> re.Pattern:
    """A module expression (``*`` one name, ``**`` any number of names) as a pattern that
    matches the module and everything inside it; ``package.__init__`` matches the package's
    own module alone."""
    if expression.endswith(".__init__"):
        return re.compile(re.escape(expression.removesuffix(".__init__")))
    parts = []
    for name in expression.split("."):
        parts.append(r"[^.]+" if name == "*" else r"[^.]+(?:\.[^.]+)*" if name == "**" else re.escape(name))
    return re.compile(r"\.".join(parts) + r"(?:\..+)?")


class ModuleKindsContract(Contract):
    type_name = "module_kinds"

    apps = fields.ListField(subfield=fields.StringField())
    interface = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        ranks = {app: rank for rank, app in enumerate(self.apps)}
        patterns = [_pattern(expression) for expression in self.interface]

        def app_of(module: str) -> str | None:
            return module.split(".")[0] if module.split(".")[0] in ranks else None

        def is_interface(module: str) -> bool:
            return any(pattern.fullmatch(module) for pattern in patterns)

        broken = []
        for importer in sorted(graph.modules):
            if app_of(importer) is None or is_interface(importer):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if app_of(imported) is None:
                    continue
                if is_interface(imported):
                    why = "a domain module imports an interface module"
                elif ranks[app_of(imported)] > ranks[app_of(importer)]:
                    why = f"{app_of(importer)} sits below {app_of(imported)}"
                else:
                    continue
                lines = [d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)]
                broken.append((importer, imported, lines, why))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines, why in check.metadata["broken"]:
            where = ", ".join(f"l.{line}" for line in lines)
            output.print_error(f"{importer} -> {imported} ({where}): {why}", bold=False)
            output.new_line()
