"""Templates of the simulated junk posts that make claims or bait clicks: conspiracy and clickbait.

Slots (``{slot}``) are filled from :mod:`.junk_vocabulary` and the word lists here; long-form posts
(30-80 words) chain a template, more claims and a closing line. All of it is simulated.
"""

from __future__ import annotations

from typing import Any

from .junk_vocabulary import (
    _num,
    _person,
)

# ----------------------------------------------------------------------------- conspiracy

_CONSPIRACY_SLOTS: dict[str, Any] = {
    "actor": (
        "the government", "big pharma", "the WHO", "the elites", "the mainstream media", "the banks",
        "the globalists", "big tech", "the FDA", "the CDC", "the billionaires", "the UN", "the deep state",
        "the food industry", "the cabal", "Silicon Valley", "the central banks", "the illuminati", "they",
        "the pharma lobby", "the weather service", "NASA", "the military", "the school system",
        "the insurance companies", "Hollywood", "the tech bros", "the oil companies",
    ),
    "thing": (
        "fluoride in the water", "chemtrails", "5G towers", "seed oils", "the vaccines", "smart meters",
        "lab-grown meat", "digital IDs", "the moon landing", "cloud seeding", "microwave ovens",
        "sunscreen", "tap water", "the flu shot", "wind turbines", "LED streetlights", "fake meat",
        "contactless cards", "grocery store bread", "GMO corn", "QR codes", "daylight saving time",
        "electric cars", "the satellites", "bluetooth earbuds", "the new money", "fortified cereal",
        "wifi routers", "the census", "artificial sweeteners", "nasal swabs", "the ice wall",
    ),
    "effect": (
        "control your mind", "make you sterile", "track everything you do", "keep you sick and paying",
        "dumb the population down", "change your DNA", "calcify your pineal gland", "make you docile",
        "give you brain fog", "shut down your immune system", "cause the headaches everyone is having",
        "lower your IQ", "make people depressed on purpose", "keep you asleep", "drain your energy",
        "shorten your life by 20 years", "make you addicted", "block your third eye",
        "make you easier to control", "rewire the brains of kids",
    ),
    "cure": (
        "lemon water", "turmeric", "apple cider vinegar", "raw garlic", "colloidal silver", "baking soda",
        "castor oil", "cold plunges", "sungazing", "raw milk", "beef tallow", "pine needle tea",
        "grounding barefoot", "a 10 day juice cleanse", "oil pulling", "crystals under your pillow",
        "celery juice", "frequency healing", "borax in your coffee", "a coffee enema", "raw liver",
        "iodine drops", "black seed oil", "fasting for 7 days", "onions in your socks",
    ),
    "disease": (
        "cancer", "diabetes", "autism", "anxiety", "heart disease", "arthritis", "the flu", "alzheimer's",
        "high blood pressure", "parasites", "acne", "depression", "asthma", "migraines", "ADHD",
        "thyroid problems", "long covid", "eczema", "insomnia", "kidney stones",
    ),
    "evidence": (
        "my uncle who works at {org}", "a nurse I know", "a leaked memo", "an old documentary they took down",
        "a guy on a podcast with 2 million views", "the patent from {year}", "a whistleblower",
        "my chiropractor", "a deleted tweet", "a screenshot my cousin sent me", "declassified files",
        "a thread that got nuked", "a retired pilot", "an ex {org} employee", "my {relative}'s doctor",
    ),
    "org": (
        "the water company", "a pharmacy", "a big hospital", "the airport", "the phone company",
        "a vaccine lab", "the DMV", "NASA", "a news station", "a search engine company", "the power plant",
        "a food factory", "the city council", "a bank",
    ),
    "hidden": (
        "the cure for {disease}", "free energy", "the real shape of the earth", "what happened in {year}",
        "the truth about {thing}", "how old the pyramids really are", "the real reason prices went up",
        "what's really in {thing}", "the real moon footage", "the tech that makes {disease} go away",
        "the second sun", "the giant skeletons", "the real death numbers",
    ),
    "wake": (
        "WAKE UP", "Do your own research.", "Open your eyes.", "Think about it.", "Connect the dots.",
        "Wake up sheeple", "Coincidence? I think NOT.", "The truth is out there.", "Question everything.",
        "Nobody is talking about this.", "Share before they delete this.", "They can't hide it forever.",
        "Stay woke.", "Research it yourself.", "Don't say nobody warned you.", "WAKE UP PEOPLE!!!",
        "Trust your gut, not the news.", "The sheep will laugh.",
    ),
    "event": (
        "moon landing", "{year} blackout", "eclipse", "last election", "pandemic", "Mars rover footage",
        "earthquake last week", "royal wedding", "halftime show", "hurricane season", "train crash",
    ),
    "detail": (
        "shadows", "flag moving", "lighting", "background extras", "timestamps", "reflection in the visor",
        "same clouds in every shot", "crisis actors", "missing stars", "weird editing at 2:14",
    ),
    "observation": (
        "everyone got sick right after {thing} went up", "the news all use the exact same words",
        "prices go up every time {actor} has a meeting", "the planes only spray on sunny days",
        "every celebrity does the same hand sign", "the birds sit on power lines to recharge",
        "nobody has ever filmed the whole earth spinning", "every {disease} case is near {thing}",
        "kids got smarter in countries that banned {thing}", "{actor} never eat what they sell us",
    ),
    "suspicious": (
        "delete the study", "pay off the scientists", "quietly change the label", "ban it in Europe",
        "patent it in {year}", "refuse to answer my email", "block the FOIA request", "fire the researcher",
    ),
    "food": ("bread", "baby formula", "chicken nuggets", "bottled water", "cereal", "school lunches",
             "coffee creamer", "ketchup", "protein bars", "salad dressing"),
    "habit": ("drinking tap water", "using sunscreen", "eating seed oils", "using a microwave",
              "sleeping next to her phone", "taking the pills", "eating bread", "using fluoride toothpaste"),
    "product": ("pills", "vaccines", "masks", "antidepressants", "insulin", "chemo", "inhalers", "boosters"),
}
_CONSPIRACY = (
    "they don't want you to know that {thing} is designed to {effect}. {wake}",
    "{actor} has been hiding {hidden} since {year}. {wake}",
    "{cure} cured my {disease} in {days} days. doctors HATE this {emoji}",
    "why is NOBODY talking about {thing}??? {wake}",
    "{evidence} confirmed it: {thing} can {effect}. {wake}",
    "FACT: {thing} can {effect}. {actor} knows. {wake}",
    "{pct}% of doctors know {cure} cures {disease} but they are paid to stay quiet",
    "ever notice how {observation}? not a coincidence. {wake}",
    "the {event} was staged. look at the {detail}. {wake}",
    "stop putting {thing} in your body. {cure} is all you need {emoji}",
    "{actor} and {actor} are working together on this. connect the dots {emoji}",
    "they're literally putting {thing} in the {food} now and ppl are ok with it??",
    "my {relative} stopped {habit} and her {disease} went away. coincidence?",
    "{thing} = poison. look it up before they scrub it {url}",
    "they banned this video for a reason {emoji} {url}",
    "if {thing} is safe why did {actor} {suspicious}?",
    "The real reason {thing} exists is to {effect}. {wake}",
    "{actor} released {disease} on purpose to sell more {product}",
    "detox from {thing} with {cure}. thank me later 🙏",
    "remember when they said {thing} was safe? yeah. {wake}",
    "the {disease} 'cure' is just {cure}. {actor} buried the research in {year}",
    "I'm not saying it's {actor}... but it's {actor}.",
    "i did the research. {thing} -> {disease}. every. single. time.",
    "name one person who had {disease} before {thing}. I'll wait.",
    "{actor} owns the patent on {disease}. Think about THAT.",
    "BREAKING (they won't report this): {thing} linked to {disease} {url}",
    "{evidence} told me {actor} will {effect_future} by {future_year}. {wake}",
    "Don't let them {effect}. Say NO to {thing} TODAY.",
    "the media won't show you this but {thing} causes {disease}. {wake}",
    "Fun fact: {cure} does more for {disease} than any of their {product}. Big pharma can't patent it.",
    "How is nobody connecting {thing} and {disease}?? I can't be the only one seeing this {emoji}",
    "{actor} is panicking because people are finding out about {thing} {emoji}",
)
_CONSPIRACY_SLOTS["effect_future"] = (
    "ban cash", "make {thing} mandatory", "put chips in every newborn", "shut down the internet",
    "lock us in 15 minute cities", "replace real food with {food}", "cancel the next election",
)
_CONSPIRACY_SLOTS["future_year"] = _num(2026, 2035)
_CONSPIRACY_LONG = (
    "I used to believe everything {actor} said until I started asking questions.",
    "{evidence} told me the truth and I haven't been the same since.",
    "Look at the numbers yourself, {disease} went up the same year {thing} came in.",
    "Of course {actor} will call it a conspiracy theory, that's what they always say.",
    "They laughed at people who warned about {thing} too.",
    "My {relative} had {disease} for years and nothing the doctors gave her worked.",
    "Then she tried {cure} for {days} days and now she's completely fine.",
    "Ask yourself who profits when you stay sick.",
    "The studies exist, they just bury them so you never see them.",
    "It's all connected: {thing}, {thing}, {actor}, the {event}.",
    "Why would {actor} {suspicious} if they had nothing to hide?",
    "Everyone I tell about {thing} goes quiet because deep down they know.",
    "Throw out your {food}, stop {habit} and start {cure} today.",
    "The {event} was just the beginning.",
    "Even {evidence} admitted it when nobody was recording.",
)
_CONSPIRACY_CLOSE = (
    "I'm done being quiet about this. {wake}", "Watch the video before it gets taken down again {url}",
    "{wake}", "{wake} {emoji}", "Share this before it disappears.", "Don't say I didn't warn you.",
    "Read the full thread here {url}", "{wake} {wake}",
)


# ----------------------------------------------------------------------------- clickbait

_CLICKBAIT_SLOTS: dict[str, Any] = {
    "celeb": (_person, _person, _person, "this former child star", "a famous 90s singer",
              "a reality TV star", "this A-list actor", "a famous chef", "this pop princess", "a TV host"),
    "subject": (
        "this dog", "a waiter", "this grandma", "a 7-year-old", "my landlord", "this teacher",
        "a flight attendant", "this cat", "a stranger", "this man", "the bride", "this farmer",
        "a janitor", "this toddler", "a hotel maid", "a delivery driver", "this nurse", "a bus driver",
        "this twin", "a pizza guy", "this mechanic", "a lifeguard", "a security guard",
    ),
    "found": (
        "found in the attic", "did at the wedding", "said to the judge", "pulled out of the lake",
        "bought with his last $20", "built in the backyard", "saw on the security camera",
        "found inside the wall", "did when nobody was watching", "wrote on the receipt",
        "discovered under the floorboards", "left in the tip jar", "caught on the doorbell cam",
    ),
    "happened": (
        "walked into the bank", "opened the old box", "took a DNA test", "refused to leave the plane",
        "called the police on the neighbours", "read the will", "lifted the rug", "checked the baby monitor",
        "looked inside the suitcase", "answered the door", "tried to pay with a coin", "went back to the store",
    ),
    "reaction": (
        "blow your mind", "leave you speechless", "make you cry", "change your life",
        "restore your faith in humanity", "make your jaw drop", "SHOCK you", "break the internet",
        "give you chills", "make you rethink everything", "leave you SHAKING",
    ),
    "listicle": (
        "celebrities who aged backwards", "foods you should never eat", "signs you're secretly a genius",
        "things your dentist won't tell you", "photos taken at the perfect moment",
        "hotels with dark secrets", "habits of self-made millionaires", "mistakes everyone makes in the shower",
        "hacks that will save you money", "actors who hated their co-stars", "places you can never visit",
        "kitchen tricks chefs hide from you", "items you should never buy at the dollar store",
        "wedding fails caught on camera", "TV couples who hated each other", "child stars who look unrecognizable",
    ),
    "trigger": (
        "SHOCKING", "BREAKING", "UNBELIEVABLE", "INSANE", "MUST SEE", "OMG", "WOW", "JAW-DROPPING",
        "EXPOSED", "GONE WRONG", "NOT CLICKBAIT", "URGENT", "WATCH", "LEAKED", "YOU NEED TO SEE THIS",
    ),
    "celeb_event": (
        "finally breaks silence on {topic}", "spotted with a mystery partner", "reveals the truth about {topic}",
        "is unrecognizable in new photos", "quits the show after {k} years", "caught on camera",
        "responds to the rumours", "admits the shocking truth", "breaks down in tears on live TV",
        "reveals what really happened on set", "files for divorce",
    ),
    "topic": ("the divorce", "the feud", "the surgery rumours", "the secret wedding", "the scandal",
              "the lawsuit", "the breakup", "the pregnancy rumours", "the weight loss", "the arrest"),
    "adj": ("weird", "simple", "bizarre", "60-second", "ancient", "forgotten", "genius", "banned", "free"),
    "goal": ("lose belly fat", "fix back pain", "sleep 8 hours", "look 10 years younger", "stop snoring",
             "whiten teeth overnight", "get rid of wrinkles", "boost your memory", "double your salary",
             "clear your skin", "pay off your mortgage"),
    "trend": ("drinking only water", "waking up at 4am", "cold showers", "quitting sugar", "walking 20k steps",
              "eating like a billionaire", "sleeping on the floor", "talking to strangers",
              "the viral TikTok diet", "no phone after 8pm", "eating only eggs", "saying yes to everything"),
    "doing": ("peeling bananas", "tying your shoes", "washing your hair", "cooking pasta", "brushing your teeth",
              "charging your phone", "folding towels", "eating oranges", "boiling eggs", "drinking water"),
    "why": ("planes are white", "hotel sheets are always white", "jeans have tiny pockets",
            "pilots can't have beards", "you never see baby pigeons", "gas stations sell milk",
            "stores play slow music", "pencils are yellow", "cruise ships don't fill the pool"),
    "relation": ("partner", "boss", "best friend", "cat", "neighbour", "coworker", "dog", "crush"),
    "secret": ("a genius", "lying to you", "secretly rich", "in love with you", "a psychopath",
               "hiding something", "smarter than you"),
    "place": ("the wedding", "the school talent show", "the airport", "the job interview", "the gender reveal",
              "the funeral", "the graduation", "the zoo", "the football game", "the birthday party"),
    "everyday": ("buy your next car", "eat another egg", "charge your phone tonight", "book your next flight",
                 "open a bank account", "drink another coffee", "sleep tonight", "throw away that receipt"),
}
_CLICKBAIT = (
    "You WON'T BELIEVE what {subject} {found}...",
    "{subject} {happened}... what happened next will {reaction}",
    "{trigger}: {celeb} {celeb_event} {emoji}",
    "{n} {listicle} (number {k} will {reaction})",
    "Doctors are STUNNED by this {adj} trick to {goal}",
    "I tried {trend} for {days} days and THIS happened {emoji}",
    "What {celeb} looks like NOW will {reaction}",
    "STOP SCROLLING!!! {n} {listicle} {emoji}",
    "You've been {doing} WRONG your whole life {emoji}",
    "The REAL reason {why} (it's not what you think)",
    "{trigger}!! {subject} {happened} and the internet can't handle it",
    "This video has {big} views and counting... watch till the end {emoji} {url}",
    "{pct}% of people don't know this {adj} trick to {goal}",
    "Everyone is talking about what {celeb} said last night {emoji}",
    "They said it was impossible. Then {subject} {happened}.",
    "Read this before you {everyday}. Seriously. {url}",
    "{n} signs your {relation} is {secret}",
    "Nobody expected THIS at {place} {emoji}",
    "{celeb}'s {relative} just EXPOSED everything {emoji}",
    "this changes EVERYTHING {emoji}",
    "{trigger} {n} {listicle} you need to see before they're deleted",
    "one {adj} trick to {goal}. banks HATE it",
    "{celeb} {celeb_event} and fans are FURIOUS",
    "wait for it... {emoji}{emoji}",
    "I can't believe this is real {emoji} {url}",
    "{subject} {happened}. I'm not crying, you're crying {emoji}",
    "Scientists finally explain why {why} {emoji}",
    "she thought it was a normal day at {place}. she was WRONG",
    "{trigger}: the {listicle} list is out and #{k} is insane",
    "Number {k} made me gasp {emoji} {n} {listicle}",
)
_CLICKBAIT_LONG = (
    "It all started when {subject} {happened}.",
    "Nobody could have predicted what came next.",
    "At first everyone thought it was a joke.",
    "Then the video hit {big} views overnight.",
    "Experts are still trying to explain it.",
    "We've rounded up {n} {listicle} and number {k} will {reaction}.",
    "{celeb} even commented on it, and the reply is priceless.",
    "The internet has been going crazy about this since {weekday}.",
    "People in the comments are losing it.",
    "And that was only the beginning.",
)
_CLICKBAIT_CLOSE = (
    "Click the link to see the full story {url}", "You'll have to see it to believe it {emoji}",
    "Trust us, you are NOT ready for this {emoji}", "Make sure you watch until the very end {url}",
    "Share this with someone who needs to see it!", "{trigger} {emoji} {url}", "Full video here 👉 {url}",
)
_CLICKBAIT_SLOTS["weekday"] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend",
                               "last night", "this morning")


