"""The account's teams and people through the client (names in sync rules become ids)."""

from sync.services.references import Directory, reference_id


def team_lists(sim) -> int:
    return sim.stats()["endpoints"].get("GET /v1/teams", 0)


def test_every_team_is_listed_over_several_pages(xurrent, sim):
    before = team_lists(sim)
    teams = list(xurrent.list_teams(per_page=2))
    assert [(t["id"], t["name"]) for t in teams] == [
        (1, "Service Desk"),
        (2, "Network"),
        (3, "Applications"),
    ]
    assert team_lists(sim) - before == 2


def test_people_are_listed_with_their_email(xurrent):
    people = {p["name"]: p["primary_email"] for p in xurrent.list_people()}
    assert people["Jo Agent"] == "jo.agent@example.com"


def test_a_name_in_a_script_becomes_the_id_through_the_api(xurrent):
    directory = Directory()
    assert reference_id("team", "Network", xurrent, directory) == 2
    assert reference_id("assignee", "kim.specialist@example.com", xurrent, directory) == 3
