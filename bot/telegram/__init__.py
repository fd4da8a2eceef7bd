"""Everything that speaks the Telegram Bot API; the rest of `bot/` never imports `telegram`."""
