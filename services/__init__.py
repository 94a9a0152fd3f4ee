"""The application core: the rules of the lead workflow, questions to staff, broadcasts, deadline
reminders and subscriptions, notifications, profiles and the producer's rights over their data.

Each service works inside one unit of work (``storage.repositories.Repos``, opened by
``storage.db.Database.unit``), reads and changes rows only through its repositories, and returns plain
results. Services never commit: the unit of work does, once, when the whole step succeeded. They know
no chat platform, no web framework and no wording: what a message says comes from a ``Messages``
implementation (``handlers.notify.ChatMessages``, from the staff-editable texts).
"""
