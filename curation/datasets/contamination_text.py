"""Text rewrites used to plant benchmark items in disguised forms, and n-gram checks.

The contamination corpus (:mod:`curation.datasets.contamination_corpus`) plants each benchmark
item in one *form*; this module holds the rewrites that make those forms:

* :func:`reformat`: same words, different case, whitespace, boundary punctuation and line width
  (defeats paragraph-level exact matching, not normalised n-gram matching);
* :func:`paraphrase`: synonym substitution from a hand-written table (:data:`SYNONYMS`, about 600
  common English words), person-name swaps and sentence / clause reordering;
* :func:`function_source` and :func:`rename_code`: a HumanEval solution as one function without
  its docstring, with the function name, parameters and locals renamed (found with ``ast``,
  rewritten token by token with ``tokenize`` so attributes and keyword arguments are untouched);
* :func:`normalized_words` and :func:`ngrams`: the lm-eval style normalisation (lowercase, strip
  punctuation, split on whitespace) used to check that hard negatives share no long n-gram.

All randomness comes from the ``random.Random`` passed in, so rewrites are deterministic by seed.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import tokenize
from random import Random

# word:synonym pairs, several to a line; "_" stands for a space in multi-word synonyms.
_SYNONYM_TABLE = """
buy:purchase buys:purchases bought:purchased buying:purchasing sell:vend sells:vends
sold:vended selling:vending pay:spend pays:spends paid:spent spends:pays spent:paid
cost:price costs:prices price:cost money:cash total:overall totals:sums sum:total
amount:quantity amounts:quantities number:count numbers:figures many:numerous 
each:every every:each minutes:mins hours:hrs weeks:seven-day_stretches takes:needs take:need
took:needed needs:requires need:require needed:required wants:wishes want:wish wanted:wished
left:remaining remaining:left remain:stay half:fifty_percent twice:two_times double:twofold
triple:threefold store:shop stores:shops house:home home:house friends:pals friend:pal
children:kids child:kid kids:children boys:lads girls:lasses man:gentleman woman:lady
people:folks person:individual family:household mother:mom father:dad brother:sibling
sister:sibling husband:spouse wife:spouse teacher:instructor students:pupils student:pupil
school:academy class:course job:task work:labor works:labors worked:labored working:laboring
makes:creates make:create made:created making:creating build:construct built:constructed
gets:obtains get:obtain got:obtained gives:hands give:hand gave:handed given:provided
uses:employs use:employ used:employed using:employing find:determine finds:determines
found:located calculate:compute compute:calculate determine:establish decide:choose
decided:chose decides:chooses choose:select chose:selected pick:choose picks:chooses
eat:consume eats:consumes ate:consumed drink:sip drinks:sips start:begin starts:begins
started:began begin:start finish:complete finished:completed finishes:completes end:finish
ends:finishes ended:finished big:large large:big small:little little:small huge:enormous
long:lengthy short:brief fast:quick quick:fast slow:sluggish new:fresh old:aged
young:youthful first:initial last:final final:last next:following previous:prior
initial:first happy:glad sad:unhappy good:fine bad:poor poor:bad great:excellent best:finest
worst:poorest high:elevated low:reduced higher:greater lower:reduced greater:larger
less:fewer fewer:less more:additional additional:extra extra:additional most:the_majority_of
enough:sufficient important:significant significant:important main:principal major:principal
minor:small common:frequent often:frequently usually:typically typically:usually
always:invariably never:not_ever sometimes:occasionally rarely:seldom quickly:rapidly
slowly:gradually directly:straight together:jointly already:previously again:once_more
also:too however:yet therefore:thus thus:hence hence:therefore because:since since:as
while:whereas although:though whether:if about:around around:about approximately:roughly
nearly:almost almost:nearly only:just just:only very:highly really:truly correct:right
wrong:incorrect incorrect:wrong true:accurate false:untrue answer:response answers:responses
question:query questions:queries problem:issue problems:issues solution:answer option:choice
options:choices choice:option best:optimal following:subsequent statement:claim
statements:claims example:instance examples:instances result:outcome results:outcomes
effect:impact effects:impacts cause:produce causes:produces caused:produced increase:rise
increases:rises increased:rose increasing:rising decrease:drop decreases:drops
decreased:dropped reduce:lower reduces:lowers reduced:lowered change:shift changes:shifts
changed:altered include:contain includes:contains included:contained contain:include
contains:includes allow:permit allows:permits allowed:permitted help:assist helps:assists
helped:assisted show:display shows:displays showed:displayed shown:displayed tell:inform
told:informed say:state says:states said:stated ask:inquire asks:inquires asked:inquired
know:realize known:recognized knows:realizes think:believe thinks:believes believe:think
understand:grasp consider:regard considered:regarded suggest:propose suggests:proposes
describe:depict describes:depicts explain:clarify explains:clarifies occur:happen
occurs:happens occurred:happened happen:occur happens:occurs lead:result leads:results
led:resulted require:need requires:needs required:needed provide:supply provides:supplies
provided:supplied receive:get receives:gets received:got keep:retain keeps:retains
kept:retained hold:contain holds:contains held:kept move:shift moves:shifts moved:shifted
travel:journey travels:journeys walk:stroll walks:strolls walked:strolled run:jog runs:jogs
ran:jogged drive:motor drives:motors drove:motored ride:trip rides:trips write:compose
writes:composes wrote:composed written:composed read:peruse reads:peruses watch:view
watches:views watched:viewed see:observe sees:observes saw:observed look:glance
looks:glances play:compete plays:competes played:competed games:matches game:match
team:squad teams:squads players:participants player:participant group:collection
groups:collections part:portion parts:portions piece:segment pieces:segments area:region
areas:regions place:location places:locations city:town country:nation countries:nations
world:globe government:administration law:statute laws:statutes rule:regulation
rules:regulations power:strength force:pressure energy:vigor food:nourishment meal:repast
meals:repasts cake:gateau cookies:biscuits bread:loaf fruit:produce trip:journey
trips:journeys car:automobile cars:automobiles bus:coach truck:lorry road:street
roads:streets garden:yard farm:ranch farmer:grower plants:crops plant:crop animals:creatures
animal:creature dog:hound dogs:hounds cat:feline cats:felines bird:fowl birds:fowl
box:carton boxes:cartons bag:sack bags:sacks bottle:flask bottles:flasks cup:mug cups:mugs
book:volume books:volumes pages:sheets page:sheet picture:image pictures:images room:chamber
rooms:chambers floor:storey building:structure shop:store market:marketplace company:firm
business:enterprise businesses:enterprises worker:employee workers:employees
member:participant members:participants customer:client customers:clients orders:requests
goal:target plan:scheme idea:notion reason:rationale method:approach process:procedure
system:framework information:data data:information research:study study:research
studies:investigations value:worth values:figures size:dimension rate:pace speed:velocity
period:interval distance:span length:extent weight:mass degree:extent type:kind kinds:sorts
types:kinds way:manner ways:manners case:instance cases:instances points:marks line:row
lines:rows list:series top:summit bottom:base side:flank sides:flanks center:middle
middle:center difference:gap similar:alike different:distinct same:identical
equal:equivalent certain:particular specific:particular particular:specific general:broad
whole:entire entire:whole full:complete complete:full single:lone several:multiple
various:diverse possible:feasible likely:probable unlikely:improbable able:capable
necessary:needed simple:basic easy:simple hard:difficult difficult:hard clear:evident
clearly:evidently obvious:apparent strong:powerful weak:feeble early:premature late:tardy
recent:latest current:present future:upcoming past:former normal:ordinary natural:innate
real:actual actual:real actually:in_fact exactly:precisely specifically:particularly
generally:broadly mostly:largely together:collectively alone:solo instead:rather
rather:fairly especially:particularly still:yet soon:shortly later:afterwards
before:prior_to after:following during:throughout within:inside without:lacking between:amid
among:amongst across:over through:via above:over below:beneath under:beneath inside:within
outside:beyond near:close_to includes:comprises means:signifies meaning:sense refers:alludes
refer:allude represents:stands_for represent:stand_for called:named based:founded
related:connected associated:linked involved:engaged involves:entails involve:entail
produces:generates produce:generate produced:generated creates:produces create:produce
develop:evolve developed:evolved development:growth growth:expansion rise:climb fall:decline
falls:declines fell:declined drop:fall grows:expands grow:expand grew:expanded add:append
adds:appends added:appended subtract:deduct multiply:times divide:split divided:split
combined:merged combine:merge collect:gather collects:gathers collected:gathered saves:keeps
save:keep saved:kept earn:make earns:makes earned:made lose:forfeit loses:forfeits
lost:misplaced win:triumph wins:triumphs won:triumphed try:attempt tries:attempts
tried:attempted fill:load fills:loads filled:loaded share:split shares:splits shared:divided
bake:cook bakes:cooks baked:cooked cook:prepare cooks:prepares cooked:prepared arrive:come
arrives:comes arrived:came leave:depart leaves:departs return:come_back returns:comes_back
returned:came_back visit:call_on visits:calls_on visited:called_on answer:reply
week:seven_days weeks:seven-day_spans
action:act actions:acts step:stage steps:stages against:versus security:safety elements:components
element:component position:location now:currently field:domain direct:immediate society:community
population:populace test:exam tests:exams program:programme programs:programmes error:mistake
errors:mistakes war:conflict wars:conflicts consent:permission foreign:overseas federal:national
tend:incline tends:inclines individual:person individuals:persons argument:line_of_reasoning
policy:strategy policies:strategies political:governmental expressed:conveyed express:convey
tax:levy taxes:levies social:societal management:administration medical:clinical pattern:motif
ratio:proportion proportion:ratio structure:arrangement structures:arrangements
authority:jurisdiction military:martial risk:hazard risks:hazards threat:menace threats:menaces
belong:pertain belongs:pertains affected:influenced affect:influence affects:influences
decision:choice decisions:choices offer:propose offers:proposes percent:per_cent sure:certain
national:nationwide international:global multiple:numerous come:arrive comes:arrives moral:ethical
ethical:moral morally:ethically expected:anticipated expect:anticipate denote:signify
denotes:signifies things:objects including:counting relations:ties goods:merchandise
client:customer diversity:variety someone:somebody processes:procedures central:core
surface:exterior avoid:evade avoids:evades stage:phase stages:phases original:initial
debt:liability effective:efficient damage:harm went:traveled women:ladies older:elder
material:substance materials:substances lack:absence beyond:past movement:motion prevent:stop
prevents:stops construction:building correctly:properly percentage:proportion protection:defense
rights:entitlements economic:financial trade:commerce definition:meaning messages:notes relief:aid
nature:character ordinary:typical approach:method assume:suppose assumes:supposes assumed:supposed
primarily:chiefly private:personal personal:private restriction:limit restrictions:limits
target:goal compared:contrasted placed:put recognized:acknowledged supported:backed life:existence
appear:seem appears:seems death:demise limits:bounds conditions:circumstances factors:aspects
community:society lot:great_deal reality:actuality leaving:departing production:output
named:called famous:renowned renowned:famous defined:specified responsible:accountable stop:halt
stopping:halting halt:stop failure:breakdown destroy:wreck destroyed:wrecked saying:stating
seriously:gravely cheap:inexpensive check:verify conversion:transformation eliminate:remove
modified:altered indicate:show indicates:shows reflects:mirrors secretly:covertly
combining:merging involving:including opinions:views progress:advancement talk:conversation
"""


def _parse_table(table: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for entry in table.split():
        word, syn = entry.split(":")
        alts = out.setdefault(word, [])
        if syn.replace("_", " ") not in alts:
            alts.append(syn.replace("_", " "))
    return {w: tuple(alts) for w, alts in out.items()}


SYNONYMS: dict[str, tuple[str, ...]] = _parse_table(_SYNONYM_TABLE)
# First names that GSM templates fill in; a paraphrase swaps one for another of the same group,
# consistently within an item (so "she" still refers to a woman's name).
_FEMALE = tuple("""
Abigail Alice Amelia Anna Ava Betty Charlotte Chloe Emily Emma Fatima Grace Hannah Harper
Isabella Jane Julia Lily Maria Mia Olivia Rachel Sarah Sofia Sophia Sophie Zoe
""".split())
_MALE = tuple("""
Aaron Andrew Ben Benjamin Brian Carlos Daniel David Diego Ethan Henry Jack Jacob James John
Joseph Kevin Leo Liam Lucas Luis Mark Mason Michael Mike Noah Oliver Paul Richard Robert Ryan
Thomas Tom William
""".split())
NAMES = _FEMALE + _MALE
_NAME_SET = frozenset(NAMES)

STOPWORDS = frozenset("""
a an the of to and or in on at by for from with as is are was were be been being it its this that
these those he she they we you i his her their our your him them us me my not no if so than then
there here what which who whom how when where why will would can could should may might must do
does did has have had but all any each some into about also only such both up out s t very just
""".split())

_WORD = re.compile(r"(?<![\\\w])([A-Za-z]+)(?![\w'])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_FRONTED = re.compile(r"^(If|When|Since|Because|Although|While|After|Before|Once) ([^,]{3,}), "
                      r"([a-z][^,]*?)([.?!])$")
_PUNCT = re.compile(r"[^\w\s]")
_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|Prof|Jr|Sr|vs|etc|e\.g|i\.e|[A-Z])\.$")
_ARTICLE = re.compile(r"(?<![\w'])([Aa])n? $")


def normalized_words(text: str, *, delete: bool = True) -> list[str]:
    """Lowercase, strip punctuation, split on whitespace (lm-eval janitor style).

    ``delete=True`` deletes punctuation ("don't" -> "dont"); ``delete=False`` turns it into
    spaces ("don't" -> "don t"). Checks that must hold for any reasonable detector use both.
    """
    return _PUNCT.sub("" if delete else " ", text.lower()).split()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    """All word n-grams of ``words`` (empty when there are fewer than ``n`` words)."""
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def content_words(text: str) -> list[str]:
    """Alphabetic words of three letters or more that are not stopwords (lowercased)."""
    return [w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in STOPWORDS]


def _match_case(template: str, word: str) -> str:
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _reorder_sentences(line: str, rng: Random) -> str:
    if line.lstrip().startswith("(A)"):
        return line
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(line.strip()):
        if sentences and _ABBREVIATION.search(sentences[-1]):  # "Dr. Patel" is one sentence
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    out = []
    for s in sentences:
        m = _FRONTED.match(s)
        if m and rng.random() < 0.7:  # "If A, b." -> "B if A."
            conj, clause, main, end = m.groups()
            s = f"{main[0].upper()}{main[1:]} {conj.lower()} {clause}{end}"
        out.append(s)
    head, last = out[:-1], out[-1:]
    if len(head) >= 2:  # keep the final sentence (usually the question) last
        order = list(range(len(head)))
        for _ in range(8):
            rng.shuffle(order)
            if order != sorted(order):
                break
        head = [head[i] for i in order]
    return " ".join(head + last)


def paraphrase(text: str, rng: Random, rate: float = 0.45, names: dict | None = None) -> str:
    """Reword ``text``: sentences reordered, ``rate`` of its content words swapped for synonyms.

    Conditional sentences may have their clauses swapped; person names from :data:`NAMES` are
    replaced consistently (pass the same ``names`` dict for the question and answer of one item).
    When the table covers fewer than ``rate`` of the content words, every covered word is swapped.
    """
    names = {} if names is None else names
    lines = [_reorder_sentences(line, rng) if line.strip() else line
             for line in text.split("\n")]
    text = "\n".join(lines)
    matches = list(_WORD.finditer(text))
    n_content = sum(1 for m in matches if len(m[1]) > 2 and m[1].lower() not in STOPWORDS)
    covered = [i for i, m in enumerate(matches)
               if m[1].lower() in SYNONYMS or m[1] in _NAME_SET]
    chosen = set(rng.sample(covered, min(len(covered), round(rate * n_content))))
    pieces, pos = [], 0
    for i, m in enumerate(matches):
        if i not in chosen:
            continue
        word = m[1]
        if word in _NAME_SET:
            if word not in names:
                group = _FEMALE if word in _FEMALE else _MALE
                names[word] = rng.choice([n for n in group
                                          if n != word and n not in names.values()])
            new = names[word]
        else:
            new = _match_case(word, rng.choice(SYNONYMS[word.lower()]))
        before = text[pos:m.start()]
        if art := _ARTICLE.search(before):  # "a total" -> "an overall"
            before = before[:art.start()] + art[1] + ("n" if new[0] in "aeiouAEIOU" else "") + " "
        pieces += [before, new]
        pos = m.end()
    pieces.append(text[pos:])
    return "".join(pieces)


_SWAP = {".": ";", ",": ";", ";": ",", ":": ",", "?": ".", "!": "."}


def _case_fn(mode: str, rng: Random):
    def safe(word: str, new: str) -> str:  # keep ASCII-only case changes (no "ß" -> "SS")
        return new if new.lower() == word.lower() else word
    if mode == "lower":
        return lambda w: safe(w, w.lower())
    if mode == "upper":
        return lambda w: safe(w, w.upper())
    if mode == "title":
        return lambda w: safe(w, w[:1].upper() + w[1:].lower())
    return lambda w: safe(w, w.upper()) if rng.random() < 0.3 else w


def reformat(text: str, rng: Random) -> str:
    """Same words, new look: changed case, whitespace and punctuation, re-wrapped to 30-50 chars.

    Only punctuation at the edges of whitespace-separated words is removed or swapped, and
    words are never split or joined, so the normalised word sequence is unchanged.
    """
    case = _case_fn(rng.choice(["lower", "upper", "title", "random"]), rng)
    punct = rng.choice(["remove", "swap", "mixed"])
    words = []
    for word in text.split():
        core = word.rstrip(".,;:!?")
        tail = word[len(core):]
        if punct == "remove" or (punct == "mixed" and rng.random() < 0.5):
            core, tail = core.strip("\"'()[]`"), ""
        elif tail:
            tail = "".join(_SWAP.get(c, c) for c in tail)
        word = case(core) + tail
        if word:
            words.append(word)
    width, gap = rng.randint(30, 50), rng.choice([" ", " ", "  ", "\t"])
    lines, line = [], ""
    for word in words:
        if line and len(line) + len(gap) + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line}{gap}{word}" if line else word
    lines.append(line)
    return rng.choice(["\n", "\n", " \n"]).join(lines)


def _is_string_stmt(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def function_source(prompt: str, solution: str, entry_point: str) -> str:
    """The HumanEval function ``entry_point`` alone: its signature plus the solution body.

    Bare string statements at the top of the body (the docstring) are dropped, and so are the
    prompt's imports and helper functions.
    """
    src = prompt + solution
    lines = src.splitlines()
    fns = [n for n in ast.parse(src).body
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point]
    if not fns:
        raise ValueError(f"no top-level function {entry_point!r} in the prompt and solution")
    fn = fns[-1]
    first = fn.body[0].lineno
    if first == fn.lineno:
        raise ValueError(f"{entry_point!r}: one-line functions are not supported")
    drop = set()
    for node in fn.body:
        if _is_string_stmt(node):
            drop.update(range(node.lineno, node.end_lineno + 1))
    body = [line for i, line in enumerate(lines[first - 1:fn.end_lineno], start=first)
            if i not in drop and (line.strip() or i - 1 not in drop)]
    while body and not body[0].strip():
        body.pop(0)
    return "\n".join(lines[fn.lineno - 1:first - 1] + body).rstrip() + "\n"


_NAME_WORDS = tuple("""
acc agg arr bag bits block box buf cell chunk col count cur data digit elem entry field flag
group head idx item items key lhs limit mark node num out pair part pos probe rhs row run seq
size slot span stack step store tally term tmp token total unit val vals view window word
""".split())
_VERBS = tuple("compute find get make check count build solve eval pick scan apply".split())
_RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins))


def _bound_names(fn: ast.FunctionDef) -> tuple[list[str], set[str]]:
    """Names bound in ``fn`` in first-seen order, and names that must keep their spelling."""
    bound: list[str] = [fn.name]
    frozen: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.arg):
            bound.append(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node is not fn:
            bound.append(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            frozen.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            frozen.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            frozen.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.JoinedStr):  # f-string internals are one token: keep them
            frozen.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return list(dict.fromkeys(bound)), frozen


def rename_code(code: str, rng: Random) -> tuple[str, dict[str, str]]:
    """Rename the function, its parameters and its locals; returns (new code, old -> new).

    Builtins, globals, imported modules, attributes and keyword-argument names keep their
    spelling, so the renamed function means the same as the original.
    """
    tree = ast.parse(code)
    fn = tree.body[0]
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ValueError("rename_code expects source that starts with a function definition")
    bound, frozen = _bound_names(fn)
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    taken = {t.string for t in tokens if t.type == tokenize.NAME} | _RESERVED
    mapping: dict[str, str] = {}
    for name in bound:
        if name in frozen:
            continue
        for attempt in range(100):
            if name == fn.name:
                new = f"{rng.choice(_VERBS)}_{rng.choice(_NAME_WORDS)}"
            else:
                new = rng.choice(_NAME_WORDS) + (str(rng.randint(0, 9)) if attempt > 20 else "")
            if new not in taken:
                break
        else:
            raise RuntimeError(f"could not find a fresh name for {name!r}")
        taken.add(new)
        mapping[name] = new
    src_lines = code.splitlines(keepends=True)

    def char_col(lineno: int, byte_col: int) -> int:
        return len(src_lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    spots = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id in mapping:
            spots.add((node.lineno, char_col(node.lineno, node.col_offset)))
        elif isinstance(node, ast.arg) and node.arg in mapping:
            spots.add((node.lineno, char_col(node.lineno, node.col_offset)))
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        if prev.string == "def" and tok.type == tokenize.NAME and tok.string in mapping:
            spots.add(tok.start)
    edits: dict[int, list[tokenize.TokenInfo]] = {}
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.start in spots:
            edits.setdefault(tok.start[0], []).append(tok)
    for lineno, toks in edits.items():
        line = src_lines[lineno - 1]
        for tok in sorted(toks, key=lambda t: -t.start[1]):
            line = line[:tok.start[1]] + mapping[tok.string] + line[tok.end[1]:]
        src_lines[lineno - 1] = line
    return "".join(src_lines), mapping
