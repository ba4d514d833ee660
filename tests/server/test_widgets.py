"""jupyter_dataops.widgets in a real kernel of a real server: governed pulls and real runs."""

from __future__ import annotations

import html
from typing import Any

import pytest

from .test_jobs import notebook, store_url  # noqa: F401
from .test_kernel import kernel_result

pytestmark = pytest.mark.kernel

POLICY = """
datasets:
  flights:
    owner: grace
    title: Flights
    source: {type: csv, path: data/flights.csv}
    columns:
      tailnum: {classification: [pii]}
  hidden:
    owner: grace
    source: {type: csv, path: data/flights.csv}
grants:
  - users: [ada]
    datasets: [flights]
    row_filter: "origin <> 'EWR'"
masks:
  - classifications: [pii]
    function: partial
    keep: 2
"""

FLIGHTS = """carrier,origin,dep_delay,tailnum,time_hour
AA,JFK,5,N12345,2013-01-01 05:00:00
AA,JFK,70,N12345,2013-01-02 06:00:00
UA,LGA,90,N54321,2013-01-02 07:00:00
UA,EWR,40,N54321,2013-01-03 08:00:00
DL,LGA,-3,N99999,2013-01-03 09:00:00
"""


@pytest.fixture
def server(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "flights.csv").write_text(FLIGHTS)
    notebook(jp_root_dir / "nb" / "hello.ipynb", "n = 2  # how many\nname = 'world'",
             "print(f'hello {name} ' * n)")  # fmt: skip
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp


async def in_kernel(server: Any, code: str) -> Any:
    result, _ = await kernel_result(
        server, "import json\nfrom jupyter_dataops import widgets as dw\n" + code
    )
    return result


async def test_dataset_picker_lists_what_you_may_read_with_a_governed_preview(server):
    r = await in_kernel(server, (
        "p = dw.DatasetPicker()\n"
        "print('RESULT ' + json.dumps({'options': [v for _, v in p.dropdown.options],\n"
        "      'value': p.value, 'preview': p.preview.value, 'info': p.info.value}))"
    ))  # fmt: skip
    assert r["options"] == ["flights"] and r["value"] == "flights"  # not "hidden"
    assert "EWR" not in r["preview"] and "JFK" in r["preview"]  # the row filter
    assert "N12345" not in r["preview"] and "****45" in r["preview"]  # the mask
    assert "tailnum" in r["info"]


async def test_parameter_form_submits_a_real_run_and_follows_it(server, api):
    r = await in_kernel(server, (
        "f = dw.ParameterForm('nb/hello.ipynb', poll_s=0.1)\n"
        "names = list(f.fields)\n"
        "f.fields['n'].value = 3\nf.fields['name'].value = 'ada'\n"
        "f.button.click()\n"
        "run = f.wait(120)\n"
        "print('RESULT ' + json.dumps({'names': names, 'kinds': [type(x).__name__ for x in "
        "f.fields.values()], 'run': run['id'], 'status': run['status'],\n"
        "      'progress': [f.progress.value, f.progress.max], 'text': f.status.value}))"
    ))  # fmt: skip
    assert r["names"] == ["n", "name"] and r["kinds"] == ["IntText", "Text"]
    assert r["status"] == "succeeded" and r["progress"][0] == r["progress"][1]
    code, run = await api("GET", f"runs/{r['run']}")
    assert run["parameters"] == {"n": 3, "name": "ada"} and run["triggered_by"] == "ada"
    r = await in_kernel(server, (
        "t = dw.RunsTable()\n"
        "print('RESULT ' + json.dumps({'html': t.table.value}))"
    ))  # fmt: skip
    table = r["html"]
    assert table.count("<tr>") == 2 and "succeeded" in table and "nb/hello.ipynb" in table


async def test_a_bad_value_in_the_form_is_named_and_nothing_runs(server, api):
    r = await in_kernel(server, (
        "f = dw.ParameterForm('nb/hello.ipynb')\n"
        "f.fields['name'].value = 'x'\n"
        "f.parameters[0]['type'] = 'any'; f.fields['n'] = type(f.fields['name'])(value='[1')\n"
        "run = f.submit()\n"
        "print('RESULT ' + json.dumps({'run': run, 'status': f.status.value}))"
    ))  # fmt: skip
    assert r["run"] is None
    assert "parameter 'n' must be int" in html.unescape(r["status"])
    code, runs = await api("GET", "runs")
    assert runs["runs"] == []


async def test_filter_controls_drive_a_governed_table_and_chart(server):
    r = await in_kernel(server, (
        "c = dw.FilterControls('flights', category='carrier', date='time_hour',\n"
        "                      columns=['carrier', 'origin', 'dep_delay', 'time_hour'],\n"
        "                      value='dep_delay')\n"
        "first = {'options': list(c.choice.options), 'summary': c.summary.value,\n"
        "         'chart': len(c.chart.outputs)}\n"
        "c.choice.value = 'UA'\n"
        "ua = {'summary': c.summary.value, 'table': c.table.value, 'where': c.where()}\n"
        "import datetime\n"
        "c.choice.value = 'all'\n"
        "c.start.value = datetime.date(2013, 1, 2); c.end.value = datetime.date(2013, 1, 2)\n"
        "day = {'summary': c.summary.value, 'where': c.where(), 'chart': c.chart.outputs}\n"
        "print('RESULT ' + json.dumps({'first': first, 'ua': ua, 'day': day}, default=str))"
    ))  # fmt: skip
    first, ua, day = r["first"], r["ua"], r["day"]
    assert first["options"] == ["all", "AA", "DL", "UA"]  # EWR's flights are not yours
    assert "<b>4</b> rows" in first["summary"] and first["chart"] == 1
    assert "<b>1</b> rows" in ua["summary"] and ua["where"] == "carrier = 'UA'"
    assert "LGA" in ua["table"] and "EWR" not in ua["table"]
    assert day["where"] == "time_hour >= '2013-01-02' AND time_hour < '2013-01-03'"
    assert "<b>2</b> rows" in day["summary"]
    assert day["chart"][0]["data"]["image/png"]  # a chart the published view shows too
