"""The studio's dock widgets: Data, Checkpoint, Condition, Plan, Run and Train."""
