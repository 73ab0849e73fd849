"""MongoDB's error replies: ``{ok: 0, errmsg, code, codeName}`` with the server's codes
(src/mongo/base/error_codes.yml) and, where drivers need them, ``errorLabels``."""

CODE_NAMES = {
    1: "InternalError", 17: "ProtocolError", 2: "BadValue", 79: "UnknownReplWriteConcern",
    100: "UnsatisfiableWriteConcern", 108: "InconsistentReplicaSetNames", 9: "FailedToParse", 13: "Unauthorized", 14: "TypeMismatch",
    18: "AuthenticationFailed", 23: "AlreadyInitialized", 26: "NamespaceNotFound",
    43: "CursorNotFound", 50: "MaxTimeMSExpired", 59: "CommandNotFound",
    64: "WriteConcernTimeout", 66: "ImmutableField", 72: "InvalidOptions",
    73: "InvalidNamespace", 74: "NodeNotFound", 76: "NoReplicationEnabled",
    93: "InvalidReplicaSetConfig", 94: "NotYetInitialized", 95: "NotSecondary",
    103: "NewReplicaSetConfigurationIncompatible", 104: "NodeNotElectable",
    109: "ConfigurationInProgress", 117: "ConflictingOperationInProgress",
    125: "CommandFailed", 189: "PrimarySteppedDown", 225: "TransactionTooOld",
    262: "ExceededTimeLimit", 308: "CurrentConfigNotCommittedYet", 10107: "NotWritablePrimary",
    11000: "DuplicateKey", 11602: "InterruptedDueToStepdown", 13435: "NotPrimaryNoSecondaryOk",
    13436: "NotPrimaryOrSecondary",
}


class MongoError(Exception):
    def __init__(self, code, errmsg, labels=(), **extra):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.labels = list(labels)
        self.extra = extra

    def reply(self):
        out = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code,
               "codeName": CODE_NAMES.get(self.code, "Location%d" % self.code)}
        out.update(self.extra)
        if self.labels:
            out["errorLabels"] = self.labels
        return out
