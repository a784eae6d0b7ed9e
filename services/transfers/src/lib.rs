//! The transfers service: command side of the MoneyTransfer aggregate.
