"""The search attributes operators filter backfills and recurring runs by in the Temporal UI."""

from temporalio.common import SearchAttributeKey

TEAM_ID = SearchAttributeKey.for_int("TeamId")
TRANSFER_ID = SearchAttributeKey.for_int("TransferId")
BACKFILL_ID = SearchAttributeKey.for_int("BackfillId")
BACKFILL_STATUS = SearchAttributeKey.for_keyword("BackfillStatus")
BACKFILL_PAUSED = SearchAttributeKey.for_bool("BackfillPaused")  # set once first paused
RUN_TYPE = SearchAttributeKey.for_keyword("RunType")  # Backfill or Recurring

ALL = (TEAM_ID, TRANSFER_ID, BACKFILL_ID, BACKFILL_STATUS, BACKFILL_PAUSED, RUN_TYPE)
