// The AAR `org.tournee:tournee-field`: libtournee_mobile_ffi.so for arm64-v8a, armeabi-v7a and
// x86_64 (built by cargo-ndk from the crate tournee-mobile-ffi), and the Kotlin bindings that
// mobile-ffi/generate-bindings.sh writes (package org.tournee.field), which load the library
// through JNA. Needs the Android SDK and NDK (ANDROID_NDK_HOME), Rust with the three Android
// targets, and cargo-ndk on the PATH; `./gradlew assembleRelease` writes
// build/outputs/aar/tournee-field-release.aar. -Ptournee.rustProfile=debug builds Rust in debug.
plugins {
    id("com.android.library") version "8.5.2"
    id("org.jetbrains.kotlin.android") version "2.0.21"
    `maven-publish`
}

group = "org.tournee"
version = "0.1.0"

/** The workspace root, two folders up: where cargo runs. */
val workspace: File = rootDir.resolve("../..").canonicalFile
val rustProfile: String = providers.gradleProperty("tournee.rustProfile").getOrElse("release")
val bindingsDir = layout.buildDirectory.dir("generated/uniffi")
val jniLibsDir = layout.buildDirectory.dir("generated/jniLibs")

android {
    namespace = "org.tournee.field"
    compileSdk = 34
    defaultConfig {
        // java.time.Instant and LocalDate (times and days in the API) without desugaring.
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].java.srcDir(bindingsDir.map { it.dir("kotlin") })
    sourceSets["main"].jniLibs.srcDir(jniLibsDir)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    publishing {
        singleVariant("release") { withSourcesJar() }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated Kotlin calls the Rust library through JNA; the @aar carries its own .so files.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
}

/** The Kotlin bindings, generated on the host from the host build of the same crate. */
val generateBindings by tasks.registering(Exec::class) {
    description = "Generates the Kotlin bindings of tournee-mobile-ffi (generate-bindings.sh)"
    workingDir = workspace
    inputs.dir(workspace.resolve("mobile-ffi/src"))
    inputs.file(workspace.resolve("mobile-ffi/uniffi.toml"))
    outputs.dir(bindingsDir)
    commandLine("bash", "mobile-ffi/generate-bindings.sh", bindingsDir.get().asFile.path)
}

/** libtournee_mobile_ffi.so for each ABI the AAR carries, into jniLibs/<abi>/. */
val cargoNdk by tasks.registering(Exec::class) {
    description = "Builds tournee-mobile-ffi for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk"
    workingDir = workspace
    inputs.dir(workspace.resolve("mobile-ffi/src"))
    inputs.dir(workspace.resolve("sync-core/src"))
    inputs.file(workspace.resolve("Cargo.lock"))
    outputs.dir(jniLibsDir)
    val profile = if (rustProfile == "release") listOf("--release") else emptyList()
    commandLine(
        listOf(
            "cargo", "ndk",
            "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
            "-o", jniLibsDir.get().asFile.path,
            "build", "--locked", "-p", "tournee-mobile-ffi", "--lib",
        ) + profile,
    )
}

tasks.named("preBuild") {
    dependsOn(generateBindings, cargoNdk)
}

publishing {
    publications {
        register<MavenPublication>("release") {
            artifactId = "tournee-field"
            afterEvaluate { from(components["release"]) }
        }
    }
}
