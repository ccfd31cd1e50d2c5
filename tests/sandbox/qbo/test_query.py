"""The query endpoint: the SELECT subset real clients send (qbo-api.md §3.1)."""

from __future__ import annotations

from tests.sandbox.qbo.conftest import QboHttp


async def _customers(qbo: QboHttp, count: int) -> None:
    for number in range(1, count + 1):
        await qbo.customer(f"Customer {number:02d}", CompanyName="Acme" if number % 2 else "Globex")


async def test_paging_with_startposition_and_maxresults(qbo: QboHttp) -> None:
    await _customers(qbo, 5)
    page = await qbo.query("select * from Customer STARTPOSITION 2 MAXRESULTS 2")
    assert [c["DisplayName"] for c in page["Customer"]] == ["Customer 02", "Customer 03"]
    assert (page["startPosition"], page["maxResults"]) == (2, 2)
    assert await qbo.query("select * from Customer STARTPOSITION 6 MAXRESULTS 2") == {}


async def test_maxresults_above_1000_is_a_query_validation_error(qbo: QboHttp) -> None:
    status, answer = await qbo.get("query", query="select * from Customer MAXRESULTS 1500")
    assert status == 400
    assert answer["Fault"]["Error"][0]["Detail"].endswith("value 1500 is too large. Max allowed value is 1000")


async def test_unparseable_query_is_a_parser_error(qbo: QboHttp) -> None:
    status, answer = await qbo.get("query", query="select from where")
    assert (status, answer["Fault"]["Error"][0]["code"]) == (400, "4000")


async def test_count_where_and_like_in_and_order_by(qbo: QboHttp) -> None:
    await _customers(qbo, 5)
    assert await qbo.query("SELECT COUNT(*) FROM Customer WHERE CompanyName = 'acme'") == {"totalCount": 3}
    liked = await qbo.query("select * from Customer where DisplayName like '%0_' and CompanyName = 'Acme'")
    assert liked == {}  # LIKE has only the % wildcard; "_" is literal
    liked = await qbo.query("select * from Customer where DisplayName LIKE 'customer 0%' ORDERBY DisplayName DESC")
    assert [c["DisplayName"] for c in liked["Customer"]][:2] == ["Customer 05", "Customer 04"]
    picked = await qbo.query("select Id, DisplayName from Customer where Id IN ('1', '3')")
    assert [(c["Id"], sorted(c)) for c in picked["Customer"]] == [
        ("1", ["DisplayName", "Id", "sparse"]),
        ("3", ["DisplayName", "Id", "sparse"]),
    ]


async def test_inactive_records_are_hidden_unless_the_query_filters_on_active(qbo: QboHttp) -> None:
    customer = await qbo.customer("Gone Ltd")
    await qbo.customer("Here Ltd")
    await qbo.ok("POST", "customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert [c["DisplayName"] for c in (await qbo.query("select * from Customer"))["Customer"]] == ["Here Ltd"]
    both = await qbo.query("select * from Customer where Active IN (true, false)")
    assert len(both["Customer"]) == 2
    assert (await qbo.query("select * from Customer where Active = false"))["Customer"][0]["Id"] == customer["Id"]


async def test_last_updated_time_filter_compares_instants_across_offsets(qbo: QboHttp) -> None:
    old = await qbo.customer("Old Ltd")
    qbo.sandbox.clock.advance(600)
    new = await qbo.customer("New Ltd")
    since = new["MetaData"]["LastUpdatedTime"]
    rows = await qbo.query(f"select * from Customer where Metadata.LastUpdatedTime >= '{since}'")
    assert [c["Id"] for c in rows["Customer"]] == [new["Id"]]
    assert old["MetaData"]["LastUpdatedTime"] < since
    ordered = await qbo.query("select * from Customer Order By Metadata.LastUpdatedTime desc")
    assert [c["Id"] for c in ordered["Customer"]] == [new["Id"], old["Id"]]


async def test_references_compare_by_id(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    other = await qbo.customer("Globex")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    await qbo.invoice(other["Id"], (item["Id"], 1, 10, "NON"))
    rows = await qbo.query(f"select * from Invoice where CustomerRef = '{customer['Id']}'")
    assert [i["Id"] for i in rows["Invoice"]] == [invoice["Id"]]
