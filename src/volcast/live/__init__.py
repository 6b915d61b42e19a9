"""The live service `volcast serve` runs: it follows a watch-list of series across exchanges,
keeps their forecasts fresh at each close, nowcasts the open candle, evaluates alert rules and
delivers them to webhooks, retrains on a schedule, and exports metrics. It sits above
``workspace`` (it calls its flows) and below ``web`` and ``cli`` (which start and show it)."""
