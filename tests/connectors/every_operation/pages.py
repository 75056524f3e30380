"""A second module of the package: the rows of one page (the connector imports it)."""


def page_rows(start: int, count: int) -> list[dict]:
    return [
        {"id": n, "name": f"item {n}", "price": n * 1.5, "active": n % 2 == 0}
        for n in range(start, start + count)
    ]
