import random
from decimal import Decimal as D

import pytest

from prescient_pipeline.domain.accounting import (
    LedgerImbalanceError,
    PositionState,
    Totals,
    apply_transfer,
    check_balanced,
    close_position,
    imbalance_message,
    ledger_difference,
    mark,
    open_position,
    portfolio_totals,
    to_money,
)
from prescient_pipeline.domain.fills import buy, sell
from prescient_pipeline.domain.settlement import MarketResolution, settle_position, settlement_for


def test_quanta_match_the_numeric_columns():
    # MONEY 6 dp, SHARES and PRICE 8 dp; halves round away from zero like PostgreSQL.
    position = PositionState("m", "YES", "1.123456785", "2.0000005", "0.123456785")
    assert position.shares == D("1.12345679")
    assert position.cost_basis == D("2.000001")
    assert position.avg_price == D("0.12345679")
    assert to_money(0.1) == D("0.100000")  # floats go through their shortest repr


def test_mark_after_a_fee_free_buy():
    position = open_position("m1", "YES", buy(100, D("0.40"), 0))
    # 250 shares * 0.50 = 125; unrealized = 125 - 100 = 25
    assert mark(position, D("0.50")) == (D("125"), D("25"))


def test_mark_after_a_buy_with_fee_counts_the_fee_in_cost_basis():
    fill = buy(D("101.2"), D("0.40"), D("0.02"))
    position = open_position("m1", "YES", fill)
    # fee per share 0.02 * 0.4 * 0.6 = 0.0048: a share costs 0.4048, 101.2 / 0.4048 = 250 shares,
    # fee 250 * 0.0048 = 1.2; the cost basis is all 101.2
    assert (position.shares, position.cost_basis, position.entry_fee) == (D("250"), D("101.2"), D("1.2"))
    market_value, unrealized = mark(position, D("0.50"))
    # 250 * 0.5 = 125; unrealized = 125 - 101.2 = 23.8
    assert (market_value, unrealized) == (D("125"), D("23.8"))


def test_unknown_price_keeps_the_last_mark_then_the_entry_price():
    position = PositionState("m", "NO", 100, 30, D("0.3"))
    assert mark(position, None) == (D("30"), D("0"))
    marked_before = PositionState("m", "NO", 100, 30, D("0.3"), current_price=D("0.35"))
    assert mark(marked_before, None) == (D("35"), D("5"))


def test_close_position_realizes_proceeds_minus_cost_basis():
    position = open_position("m1", "YES", buy(100, D("0.40"), 0))
    # Sold 250 at 0.5 with a 2% rate: proceeds 123.75 (see test_fills); 123.75 - 100 = 23.75
    assert close_position(position, sell(position.shares, D("0.5"), D("0.02")).proceeds) == D("23.75")


def test_portfolio_totals_and_the_invariant_on_a_small_book():
    a = open_position("a", "YES", buy(100, D("0.40"), 0))  # 250 shares
    b = open_position("b", "NO", buy(50, D("0.25"), 0))  # 200 shares
    # cash = 1000 + 20 transferred in - 150 spent + 12 realized earlier = 882
    totals = portfolio_totals(
        cash=882,
        initial_balance=1000,
        net_transfers=20,
        realized_pnl=12,
        positions=[(a, D("0.5")), (b, D("0.2"))],
        portfolio_id=7,
    )
    # positions: 250*0.5 = 125 and 200*0.2 = 40 -> 165; total = 882 + 165 = 1047
    assert totals.positions_value == D("165")
    assert totals.total_value == D("1047")
    # unrealized: (125 - 100) + (40 - 50) = 15
    assert totals.unrealized_pnl == D("15")
    assert totals.total_profit_loss == D("27")
    assert totals.open_positions == 2
    # 1047 == 1000 + 20 + 12 + 15
    assert ledger_difference(totals) == 0
    check_balanced(totals)


def _totals(total_value, initial=D("1000")) -> Totals:
    return Totals(
        cash=total_value,
        positions_value=D("0"),
        total_value=total_value,
        initial_balance=initial,
        net_transfers=D("0"),
        realized_pnl=D("0"),
        unrealized_pnl=D("0"),
        fees=D("0"),
        open_positions=0,
        portfolio_id=42,
    )


def test_check_balanced_names_the_portfolio_and_the_difference():
    assert imbalance_message(_totals(D("1000.009999"))) is None
    check_balanced(_totals(D("999.990001")))
    with pytest.raises(LedgerImbalanceError) as error:
        check_balanced(_totals(D("1000.01")))
    assert "portfolio 42" in str(error.value)
    assert "off by 0.01:" in str(error.value)
    assert "off by -0.25" in imbalance_message(_totals(D("999.75")))


def test_transfers_move_cash_and_net_transfers_together():
    assert apply_transfer(D("100"), D("0"), D("50")) == (D("150"), D("50"))
    assert apply_transfer(D("100"), D("50"), D("-100")) == (D("0"), D("-50"))
    with pytest.raises(ValueError, match="cash is only 100"):
        apply_transfer(D("100"), D("0"), D("-100.01"))


class PaperBook:
    """A minimal in-memory portfolio driven only by the domain functions, as the service is."""

    def __init__(self, initial):
        self.initial = to_money(initial)
        self.cash = self.initial
        self.net_transfers = D("0")
        self.realized = D("0")
        self.fees = D("0")
        self.positions: dict[str, PositionState] = {}
        self.prices: dict[str, D] = {}

    def totals(self) -> Totals:
        return portfolio_totals(
            cash=self.cash,
            initial_balance=self.initial,
            net_transfers=self.net_transfers,
            realized_pnl=self.realized,
            positions=[(p, self.prices.get(k)) for k, p in self.positions.items()],
            fees=self.fees,
            portfolio_id=1,
        )

    def buy(self, key, side, amount, price, fee_rate):
        fill = buy(amount, price, fee_rate)
        self.cash -= fill.cost
        self.fees += fill.fee
        self.positions[key] = open_position(key, side, fill)

    def sell(self, key, price, fee_rate):
        position = self.positions.pop(key)
        fill = sell(position.shares, price, fee_rate)
        self.cash += fill.proceeds
        self.fees += fill.fee
        self.realized += close_position(position, fill.proceeds)
        self.prices.pop(key, None)

    def settle(self, key, settlement):
        position = self.positions.pop(key)
        proceeds, realized = settle_position(position, settlement)
        # Pure: settling the same position again gives the same numbers.
        assert settle_position(position, settlement) == (proceeds, realized)
        self.cash += proceeds
        self.realized += realized
        self.prices.pop(key, None)

    def transfer(self, amount):
        self.cash, self.net_transfers = apply_transfer(self.cash, self.net_transfers, amount)


def _random_price(rng):
    return D(rng.randint(1, 999)) / 1000 + D(rng.randint(0, 99999)) / D("100000000")


def test_the_invariant_holds_exactly_after_every_step_of_a_long_random_history():
    rng = random.Random(20240607)
    book = PaperBook(D("1000"))
    outcomes = [["1", "0"], ["0", "1"], ["0.5", "0.5"]]
    counts = dict.fromkeys(["buy", "mark", "sell", "settle", "transfer"], 0)
    for step in range(3000):
        action = rng.choice(list(counts))
        if action == "buy" and book.cash >= 1:
            amount = min(book.cash, D(rng.randint(100, 25000)) / 100 + D(rng.randint(0, 999999)) / 10**6)
            side, fee_rate = rng.choice(["YES", "NO"]), rng.choice(["0", "0.02", "0.072"])
            book.buy(f"m{step}", side, amount, _random_price(rng), fee_rate)
        elif action == "mark" and book.positions:
            for key in book.positions:
                if rng.random() < 0.8:  # some markets have no quote this time
                    book.prices[key] = _random_price(rng)
        elif action == "sell" and book.positions:
            book.sell(rng.choice(list(book.positions)), _random_price(rng), rng.choice(["0", "0.03"]))
        elif action == "settle" and book.positions:
            market = MarketResolution(closed=True, outcome_prices=rng.choice(outcomes))
            book.settle(rng.choice(list(book.positions)), settlement_for(market))
        elif action == "transfer":
            amount = D(rng.randint(-50000, 50000)) / 100
            if book.cash + amount >= 0:
                book.transfer(amount)
        else:
            continue
        counts[action] += 1

        totals = book.totals()
        assert ledger_difference(totals) == 0, (step, action, totals)
        check_balanced(totals)
        # The same identity from the other side: cash is what went in, minus what is tied up.
        cost = sum((p.cost_basis for p in book.positions.values()), D("0"))
        assert book.cash == book.initial + book.net_transfers + book.realized - cost
        assert book.cash >= 0
    assert min(counts.values()) > 200, counts
