"""The scheduler: the schedule grid, data delay, and the tick that claims what is due."""
