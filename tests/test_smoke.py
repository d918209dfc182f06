async def test_health(client):
    r = await client.get("/health")
    assert r.status_code == 200
    r = await client.get("/health/db")
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == "0001"
