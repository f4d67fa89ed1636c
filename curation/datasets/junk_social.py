"""Templates of the simulated junk posts of social feeds: extremely brief, spam, lifestyle and quiz bait.

Slots (``{slot}``) are filled from :mod:`.junk_vocabulary` and the word lists here. Quiz bait
states a TInt problem and gives its answer with no working (:data:`QUIZ_LEADING` of the posts
open with the problem). All of it is simulated.
"""

from __future__ import annotations

import string
from random import Random
from typing import Any

from .junk_vocabulary import (
    _money,
    _num,
)

# ----------------------------------------------------------------------------- brief

_BRIEF_FRAGMENTS = (
    "lol same", "mood", "this.", "ok but why", "real", "fr fr", "no bc same", "i'm screaming", "dead",
    "ratio", "W", "L take", "not me doing this", "bestie...", "it's giving", "slay", "period.", "who asked",
    "the way i", "me fr", "big mood", "crying", "yesss", "nahhh", "bruh", "sksksk", "literally me",
    "same tbh", "omg", "lmaooo", "why is this so real", "i can't", "ok and?", "bffr", "iconic", "obsessed",
    "+1", "this ^", "facts", "say less", "no way", "sheesh", "valid", "based", "mid", "cope", "pls", "help-",
    "HELP", "rip", "ong", "deadass", "lowkey", "highkey", "ate", "no thoughts", "vibes", "yikes", "oop",
    "and i oop", "chile", "girl what", "sir??", "ma'am", "hmm", "k", "ok", "wow", "wait what", "LMAO",
    "STOP", "i'm weak", "go off", "and that's on", "tea", "spill", "the audacity", "bye", "gn", "gm",
    "first", "late", "who's here in {year2}", "anyone else?", "same energy", "relatable", "true",
    "100%", "exactly", "yep", "nope", "idk", "idc", "tbh", "smh", "ikr", "wtf", "cap", "no cap",
    "on god", "bet", "nvm", "huh", "me too", "ugh", "aww", "cute", "love this", "hate this",
    "why tho", "when", "where", "big if true", "this is it", "peak", "cinema", "goat", "rent free",
    "understood the assignment", "not the", "can't relate", "felt", "I-", "...",
)
_BRIEF_SLOTS: dict[str, Any] = {
    "frag": _BRIEF_FRAGMENTS,
    "noun": ("cat", "audio", "outfit", "lighting", "eyebrows", "ending", "caption", "vibes", "music", "dog",
             "hair", "shoes", "timing", "plot twist", "accent", "face", "dance", "fit", "beat", "edit",
             "filter", "song", "third guy", "background", "transition", "voice crack", "side eye", "hat",
             "nails", "laugh", "baby", "sound", "camera work", "grandma", "last part", "zoom in"),
    "slang": ("sending me", "so real", "iconic", "unhinged", "feral", "elite", "so mid", "everything",
              "a vibe", "cursed", "too much", "giving"),
    "year2": _num(2019, 2026),
}
_BRIEF = (
    "{frag}", "{frag} {emoji}", "{frag} {frag}", "not the {noun} {emoji}", "the {noun}?? {emoji}",
    "{noun} core", "{noun} >>>", "{noun} is {slang}", "{frag} fr", "{mention} {frag}", "{emoji}{emoji}{emoji}",
    "{frag} {emoji}{emoji}", "the {noun} tho", "{frag}. {frag}.", "why is the {noun} {slang}",
    "{emoji} {frag}", "ok the {noun}", "me: {frag}", "{frag}!!", "{mention} this is u",
    "{frag} lol", "obsessed w the {noun}", "pov: {frag}", "{frag}??", "ngl {frag}",
)


# ----------------------------------------------------------------------------- spam

def _code(rng: Random) -> str:
    head = rng.choice(("SAVE", "MEGA", "VIP", "GLOW", "FREE", "BOSS", "DEAL", "LUXE", "FLASH", "SUMMER",
                       "XMAS", "BFF", "HOT", "NEW", "WIN", "GET", "EXTRA", "LOVE"))
    return head + str(rng.choice((10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 99, 2024, 2025)))


def _ticker(rng: Random) -> str:
    if rng.random() < 0.5:
        return "$" + "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 5)))
    return rng.choice(("Moon", "Safe", "Baby", "Elon", "Floki", "Pepe", "Doge", "Shiba", "Rocket", "Giga")) + \
        rng.choice(("Doge", "Inu", "Coin", "Moon", "Rocket", "Swap", "Cash", "Chain", "X", "AI"))


_SPAM_SLOTS: dict[str, Any] = {
    "code": _code,
    "coin": (_ticker, _ticker, "bitcoin", "BTC", "ETH", "forex", "gold", "options", "crypto", "Solana"),
    "coin_tag": ("#crypto", "#bitcoin", "#btc", "#forex", "#eth", "#trading", "#passiveincome",
                 "#nft", "#altcoin", "#1000x", "#moon", "#hodl", "#wealth", "#money"),
    "product": (
        "detox tea", "teeth whitening kits", "phone cases", "sneakers", "lash serum", "gaming chairs",
        "hair vitamins", "waist trainers", "wireless earbuds", "LED strip lights", "skincare sets",
        "protein powder", "smart watches", "hoodies", "lip gloss", "posture correctors", "perfume dupes",
        "massage guns", "sunglasses", "gym leggings", "phone chargers", "mini projectors", "e-books",
    ),
    "shop": ("my store", "the link in bio", "our shop", "glowbox", "fitfuel", "shopnow", "dealzone", "luxedupes"),
    "service": ("promo", "collabs", "followers", "shoutouts", "signals", "coaching", "bulk orders",
                "paid partnerships", "account recovery", "custom logos", "essay help", "likes", "verified badges"),
    "platform": ("Telegram", "WhatsApp", "Discord", "Signal", "Snapchat", "my VIP group", "my close friends"),
    "money": _money(800, 48000),
    "money2": _money(5, 99),
    "word": ("START", "MONEY", "INFO", "YES", "RICH", "GO", "FREEDOM", "WIN"),
    "prize": ("$1000 gift card", "new iPhone", "free cruise", "PS5", "$500 cash prize", "luxury watch"),
    "phone": lambda rng: "+1 " + "".join(rng.choice(string.digits) for _ in range(3)) + " " +
    "".join(rng.choice(string.digits) for _ in range(3)) + " " + "".join(rng.choice(string.digits) for _ in range(4)),
    "shout": ("BUY NOW", "LIMITED STOCK", "DON'T MISS OUT", "FREE SHIPPING", "ACT FAST", "CLICK THE LINK",
              "DM ME", "FOLLOW BACK", "100% LEGIT", "SALE SALE SALE", "LAST CHANCE"),
}
_SPAM = (
    "🔥 {pct}% OFF {product} with code {code} 🔥 {url}",
    "DM me for {service} 📩",
    "I made {money} in {days} days trading {coin}. DM me to learn how 💰",
    "Join my {platform} for FREE {coin} signals 📈📈 {url}",
    "FREE {product} giveaway!! Like, RT and tag 3 friends 🎁 #giveaway",
    "follow me and i follow back 100% {emoji}",
    "check my bio!! 💋 {url}",
    "Limited time only!!! {product} just {money2} {url} {shout}",
    "{coin} to the moon 🚀🚀🚀 {coin_tag} {coin_tag} {coin_tag}",
    "Earn {money}/week from home, no experience needed. DM '{word}' to start",
    "Congratulations! You have been selected to receive a {prize}. Claim here: {url}",
    "Hey {mention} we love your content! DM us to become a brand ambassador 💕",
    "Use my code {code} for {pct}% off at {shop} 💖 {url}",
    "NEW DROP!! {product} restocked, only {k} left!!! {url}",
    "looking for {service}? we got u. whatsapp {phone}",
    "Stop working 9-5! Financial freedom is one click away {url}",
    "Buy {big} followers for {money2} 💯 real & fast {url}",
    "Flash sale ⚡ {product} {pct}% off ⚡ ends tonight ⚡ {url}",
    "sub to my channel pls i post every day 🙏🙏 {url}",
    "Want passive income? My mentor {mention} changed my life. Send him a message 🙏",
    "{shout}!!! {product} {pct}% OFF {shout}!!!",
    "invested {money2} in {coin} and now I have {money}. ask me how {emoji}",
    "{mention} {mention} {mention} check this out {url}",
    "100% legit {service}, payment after delivery. {platform}: {phone}",
    "I'm giving away {money} to the first {k} people who follow me and {mention} {emoji}",
    "Your account has been flagged. Verify now to avoid suspension: {url}",
    "wholesale {product} available, min order {k} pcs, DM for price list",
    "{coin} presale is LIVE 🚀 get in before it's too late {url} {coin_tag}",
)


# ----------------------------------------------------------------------------- lifestyle

_LIFESTYLE_SLOTS: dict[str, Any] = {
    "brand": ("Gucci", "Prada", "Chanel", "Louis V", "Dior", "Balenciaga", "Cartier", "Rolex", "Hermès",
              "Lululemon", "Aritzia", "Skims", "Off-White", "Moncler", "Bottega", "Celine", "Miu Miu",
              "YSL", "Van Cleef", "Loewe", "Jacquemus", "Golden Goose", "Alo", "Fendi", "Valentino"),
    "item": ("bag", "heels", "sunnies", "watch", "tracksuit", "dress", "set", "sneakers", "blazer", "belt",
             "bracelet", "slides", "puffer", "mini skirt", "clutch", "earrings", "bikini", "loafers", "coat"),
    "destination": ("Bali", "Mykonos", "Dubai", "Tulum", "Santorini", "the Amalfi coast", "the Maldives",
                    "Ibiza", "Cabo", "St Barts", "Aspen", "Paris", "Monaco", "Lake Como", "Capri", "Miami",
                    "Positano", "Marrakech", "Bora Bora", "Saint-Tropez", "Tokyo", "Cannes", "Lisbon"),
    "meal": ("avocado toast", "acai bowl", "oat milk latte", "iced matcha", "bottomless mimosas", "truffle fries",
             "oysters", "eggs benny", "smoothie bowl", "caviar bumps", "omakase", "pink pancakes",
             "lavender latte", "wagyu sliders", "rose and burrata", "gold leaf dessert", "cold pressed juice"),
    "venue": ("the rooftop", "the beach club", "my fave cafe", "the hotel pool", "the spa", "the members club",
              "brunch spot", "the marina", "the penthouse", "the new place downtown", "the villa"),
    "activity": ("pilates", "hot yoga", "journaling", "a face mask", "a sound bath", "a 10k walk",
                 "cold plunge", "lymphatic massage", "meditation", "a blowout", "nails done", "tennis",
                 "sauna", "reformer class", "a shopping spree", "red light therapy"),
    "drink": ("a spritz", "champagne", "an espresso martini", "rose", "a coconut", "a matcha latte",
              "a green juice", "a margarita", "prosecco"),
    "time": ("golden hour", "sunset", "sunrise", "brunch o'clock", "rooftop season", "summer"),
    "day": ("sunday", "saturday", "friday", "monday", "weekend", "day off"),
    "hotel": ("the Four Seasons", "the Ritz", "an overwater villa", "the Aman", "the Bulgari", "a private villa"),
    "car": ("G wagon", "Range Rover", "Porsche", "Tesla", "Lambo", "Bentley"),
    "tag": ("#blessed", "#livingmybestlife", "#travelgram", "#wanderlust", "#luxurylife", "#ootd", "#selfcare",
            "#softlife", "#thatgirl", "#grateful", "#brunchgoals", "#jetsetter", "#richvibes", "#goodvibesonly"),
}
_LIFESTYLE = (
    "{meal} at {venue} ✨ living my best life {tag}",
    "new {brand} {item} who dis 💅",
    "{destination} never disappoints {emoji}",
    "sunday reset: {activity}, {activity} and {meal} 🕯️",
    "outfit of the day: {brand} {item}, {brand} {item}, {brand} {item} #ootd",
    "just landed in {destination} ✈️ {tag}",
    "5am club 💪 {activity} then {meal}. discipline = freedom",
    "treat yourself 💸 {brand} {item} finally mine",
    "{time} in {destination} hits different {emoji}",
    "yacht day with the girls 🛥️ {destination} {tag}",
    "another day another {meal} {emoji}",
    "when the {meal} matches the {item} 💕",
    "booked {k} nights at {hotel} bc why not {emoji}",
    "{activity} + {meal} + {activity} = perfect {day}",
    "main character energy in {destination} ✨",
    "can't believe this is my life 🥹 {destination} {tag}",
    "rate my {item} 1-10 {emoji} ({brand} obviously)",
    "pov: you're sipping {drink} by the pool in {destination}",
    "first class > everything ✈️🥂 {tag}",
    "manifested this {brand} {item} and it came true ✨ #manifestation",
    "my {day} routine: {activity}, {meal}, {activity}, repeat",
    "soft life only 🌸 {meal} at {venue}",
    "new car who dis 🚗 {car} {tag}",
    "{day} vibes: {drink} in hand, {destination} views",
    "birthday week in {destination} 🎂✨ {tag}",
    "honestly so grateful for this life 🙏 {emoji}",
    "life is short, buy the {item} 💳 {tag}",
    "hotel robe, {drink}, {destination}. no notes.",
    "{drink} for breakfast bc I'm on vacation {emoji}",
    "matching {brand} sets w my bestie {mention} 👯‍♀️",
    "back in {destination} where I belong {emoji} {tag}",
    "that {time} glow {emoji} wearing {brand} head to toe",
)


# ----------------------------------------------------------------------------- quiz

#: Share of quiz posts that open with the problem (the rest put bait text first).
QUIZ_LEADING = 0.5
_QUIZ_SLOTS: dict[str, Any] = {
    "secs": lambda rng: str(rng.choice((3, 5, 10, 15, 20, 30))),
    "grade": ("3rd", "4th", "5th", "6th", "7th"),
}
_QUIZ_BEFORE = (
    "only {pct_small}% get this right {emoji}",
    "can you solve this without a calculator? 🧠",
    "{k} out of 10 people get this WRONG",
    "IQ TEST: {pct_small}% fail this one",
    "my {relative} got this wrong lol",
    "bet you can't do this in {secs} seconds ⏱️",
    "math teachers HATE this one",
    "only geniuses get this 🤓",
    "prove you're smarter than a {grade} grader 👇",
    "quick maths time {emoji}",
    "stop scrolling and solve this 🛑",
    "the internet is divided over this one 😤",
    "no calculator. no cheating. go.",
    "easy? think again 🤔",
    "day {k} of posting a math problem until I go viral",
    "i bet {pct_small}% of you can't solve this",
    "this broke my brain ngl {emoji}",
    "{mention} you said this was easy??",
    "solve it in your head 👇",
    "GENIUS TEST {emoji}",
)
_QUIZ_AFTER = (
    "like if you got it #genius", "comment your time ⏱️", "tag someone who can't do this 😂",
    "did you get it? 🤔 #mathchallenge", "share if you got it right ✅", "follow for more brain teasers 🧠",
    "told you it was easy 😎", "drop a 🔥 if you got it", "be honest 👀", "#iqtest #brainteaser",
    "{k}k people got this wrong", "retweet if u got it first try", "too easy {emoji}", "#math #quiz #smart",
    "who else got it in {secs} seconds?", "part {k} tomorrow 👀",
)


