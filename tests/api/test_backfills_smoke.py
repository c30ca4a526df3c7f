from tests.support import Tenant


def test_a_backfill_runs_every_date_to_completed(tenant: Tenant) -> None:
    transfer_id = tenant.create_transfer(rows_per_day=5)

    created = tenant.create_backfill(transfer_id, "2024-03-01", "2024-03-06")

    assert created["status"] == "CREATED"
    done = tenant.wait_until_status(created["transfer_backfill_id"], "COMPLETED")
    assert done["transfer_runs_total"] == 6
    assert done["transfer_runs_created"] == 6
    assert done["transfer_runs_completed"] == 6
    assert done["transfer_runs_failed"] == 0
    assert sorted(r["data_date"] for r in tenant.runs(transfer_id)) == [
        f"2024-03-0{d}" for d in range(1, 7)
    ]
