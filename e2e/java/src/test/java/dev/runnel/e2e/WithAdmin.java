package dev.runnel.e2e;

import org.apache.kafka.clients.admin.Admin;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** A test class with one admin client to the broker under test, open for all its tests. */
abstract class WithAdmin {
    protected static Admin admin;

    @BeforeAll
    static void openAdmin() {
        admin = Env.admin();
    }

    @AfterAll
    static void closeAdmin() {
        admin.close();
    }
}
