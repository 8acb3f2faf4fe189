"""How long something took, in the same words on every page and in every message: "38 ms" under a second (a
check of a nearby server often takes less, and "0.0 s" said nothing), "2.4 s" under a minute, then "6 min 52 s"
and "1 h 5 min"."""


def duration_words(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
