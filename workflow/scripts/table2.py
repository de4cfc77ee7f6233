"""Table 2: every scenario x threshold source x subgroup, with changes to the clean baseline."""

from pathlib import Path

import pandas as pd

from labelbias.evaluation import assemble_table2, table2_layout
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    frames: dict[str, list[pd.DataFrame]] = {}
    for path in snakemake.input.tables:
        frames.setdefault(Path(path).parent.name, []).append(read_tsv(path, dtype={"subgroup": str}))
    per_scenario = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
    table = assemble_table2(per_scenario, snakemake.params.baseline)
    write_tsv(table, snakemake.output.table)
    sections = []
    for attribute in snakemake.params.attributes:
        layout = table2_layout(table, attribute, list(snakemake.params.scenarios), snakemake.params.baseline)
        sections.append(f"<h3>{attribute}</h3>\n" + layout.to_html(index=False, border=0, classes="table2"))
    html = (
        "<html><head><meta charset='utf-8'><style>"
        "table.table2{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "table.table2 td,table.table2 th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "</style></head><body>"
        f"<p>Test TPR and FPR against clean labels at the validation threshold closest to "
        f"{100 * float(snakemake.params.target_fpr):g}% FPR; change to the {snakemake.params.baseline} "
        "model in brackets.</p>" + "\n".join(sections) + "</body></html>"
    )
    Path(snakemake.output.html).write_text(html)


run(main, snakemake)  # noqa: F821
